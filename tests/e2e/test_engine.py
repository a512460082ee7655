"""End-to-end tests of irp run/drill: the step engine, manual steps,
approvals, retries, on_failure, templates and results between steps."""
import json
import os
from harness import canary, check


def test_exec_results_flow_between_steps(env):
    pb = env.playbook('''
        step "hello" { phase = "detection", title = "Say hello to {{host}}",
          run = function(ctx)
            local r = ctx.exec{ "echo", "hello", ctx.vars.host }
            return { said = r.stdout, code = r.code }
          end },
        step "read" { phase = "detection",
          run = function(ctx)
            local prev = ctx.steps.hello.result
            ctx.log("previous said: " .. prev.said)
            return { len = #prev.said, status = ctx.steps.hello.status }
          end },
    ''', header='''
        phases = { "detection" },
        inputs = { host = { required = true, doc = "the host" } },
    ''')
    r = env.run(pb, "-v", "host=web-07")
    check(r.code == 0, "run should succeed", r)
    check("Say hello to web-07" in r.out, "title template rendered", r)
    j = env.journal()
    types = [x["type"] for x in j]
    check(types[0] == "run.started" and types[-1] == "run.finished", "first/last events: %s" % types)
    check(env.record("run.finished")["data"]["status"] == "succeeded", "status succeeded")
    check(env.record("step.succeeded", "hello")["data"]["result"]["said"] == "hello web-07\n", "result")
    res = env.record("step.succeeded", "read")["data"]["result"]
    check(res == {"len": 13, "status": "succeeded"}, "ctx.steps visible: %r" % res)
    check(env.record("step.exec", "hello")["data"]["code"] == 0, "exec journaled")
    check([x["seq"] for x in j] == list(range(1, len(j) + 1)), "seq numbers")
    check(all(x["run"] == "r1" and x["mode"] == "live" for x in j), "run id and mode on every record")


def test_manual_step_answers_from_stdin(env):
    pb = env.playbook('''
        step "look" { title = "Look at the console", manual = "Open the EDR console for {{host}}." },
        step "skipme" { manual = "Optional check" },
        step "after" { run = function(ctx) return { seen = ctx.steps.look.status } end },
    ''', header='inputs = { host = { default = "web-01" } }')
    r = env.run(pb, stdin="note: started looking\ndone: 412 renamed files\nskip: not needed\n")
    check(r.code == 0, "run succeeds", r)
    check("Open the EDR console for web-01." in r.out, "manual text templated", r)
    a = env.record("manual.answered", "look")["data"]
    check(a["answer"] == "done" and a["note"] == "412 renamed files", "answer and note: %r" % a)
    check(env.record("operator.note", "look")["data"]["note"] == "started looking", "operator note")
    check(env.record("step.skipped", "skipme"), "skipped")
    check(env.record("step.succeeded", "after")["data"]["result"]["seen"] == "succeeded", "status")


def test_manual_failed_aborts_run(env):
    pb = env.playbook('''
        step "m" { manual = "Do the thing" },
        step "never" { run = function(ctx) return 1 end },
    ''')
    r = env.run(pb, stdin="failed: console down\n")
    check(r.code == 1, "a failed manual step aborts by default: exit 1", r)
    check("never" not in [x.get("step") for x in env.journal()], "later step never started")
    check(env.record("run.finished")["data"]["status"] == "failed", "run failed")


def test_no_answer_interrupts_resumably(env):
    pb = env.playbook('step "m" { manual = "Do the thing" },')
    r = env.run(pb, stdin="")
    check(r.code == 75, "input ended before an answer: exit 75 (resumable)", r)
    check(env.events()[-1] == "run.interrupted", "run.interrupted recorded")


def test_approval_granted_denied_and_yes(env):
    pb = env.playbook('''
        step "isolate" { approval = "incident-commander", run = function(ctx) return "isolated" end },
        step "wipe" { approval = "cso", run = function(ctx) return "wiped" end },
    ''')
    r = env.run(pb, stdin="approve: alice on the bridge\ndeny: not yet\n")
    check(r.code == 0, "denied approval skips the step, run goes on", r)
    check(env.record("approval.granted", "isolate")["data"]["note"] == "alice on the bridge", "note")
    check(env.record("approval.denied", "wipe"), "denied")
    check(env.record("step.skipped", "wipe")["data"]["reason"] == "approval denied", "skipped")
    r = env.irp("run", pb, "--state-dir", env.state, "--run-id", "r2", "--yes")
    check(r.code == 0, "--yes", r)
    check(env.record("approval.granted", "wipe", run="r2")["data"]["via"] == "--yes", "--yes journaled")


def test_retries_with_backoff_then_success(env):
    counter = os.path.join(env.dir, "count")
    pb = env.playbook('''
        step "flaky" { retries = 3, backoff = "100ms",
          run = function(ctx)
            local r = ctx.exec{ "sh", "-c", "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; [ $n -ge 3 ]", check = false }
            if r.code ~= 0 then ctx.fail("not yet (attempt " .. ctx.attempt .. ")") end
            return "ok on attempt " .. ctx.attempt
          end },
    ''' % (counter, counter))
    r = env.run(pb)
    check(r.code == 0, "third attempt succeeds", r)
    retried = [x for x in env.journal() if x["type"] == "step.retried"]
    check(len(retried) == 2, "two retries: %r" % retried)
    check(retried[0]["data"]["kind"] == "fail" and "not yet" in retried[0]["data"]["reason"], "reason")
    check(all(30 <= x["data"]["delay_ms"] <= 1000 for x in retried), "backoff with jitter")
    check(env.record("step.succeeded", "flaky")["data"]["result"] == "ok on attempt 3", "result")


def test_on_failure_continue_escalate_and_jump(env):
    pb = env.playbook('''
        step "a" { on_failure = "continue", run = function(ctx) error("a breaks") end },
        step "b" { on_failure = "escalate", run = function(ctx) ctx.fail("b cannot") end },
        step "c" { on_failure = "restore", run = function(ctx) ctx.fail("c cannot") end },
        step "skipped-by-jump" { run = function(ctx) return "should not run" end },
        step "restore" { run = function(ctx) return { a = ctx.steps.a.status, c = ctx.steps.c.status } end },
    ''', header='escalation = { { notify = { "chat" } }, { after = "1h", notify = { "pager" } } }')
    r = env.run(pb)
    check(r.code == 0, "continue/escalate/jump never abort", r)
    esc = [x for x in env.journal() if x["type"] == "escalation.triggered"]
    check([x["data"]["tier"] for x in esc] == [1, 2], "tier 1 at start, tier 2 on failure: %r" % esc)
    check(esc[1]["data"]["targets"] == ["pager"], "targets of tier 2")
    check("step.started" not in env.events(step="skipped-by-jump"), "a jumped-over step never starts")
    check("jumped over" in env.record("step.skipped", "skipped-by-jump")["data"]["reason"], "and is recorded skipped")
    res = env.record("step.succeeded", "restore")["data"]["result"]
    check(res == {"a": "failed", "c": "failed"}, "failed status visible: %r" % res)
    check("a breaks" in env.record("step.failed", "a")["data"]["reason"], "reason recorded")


def test_on_failure_loop_back_is_bounded_and_counted(env):
    # A step whose on_failure jumps back to an earlier one that leads to it
    # again loops; irp stops it at 20 visits, names the failing step, and the
    # summary counts each step's last outcome (it once said "0 failed").
    pb = env.playbook('''
        step "prepare" { run = function(ctx) return 1 end },
        step "apply" { on_failure = "prepare", run = function(ctx) ctx.fail("still broken") end },
        step "after" { run = function(ctx) return 3 end },
    ''')
    r = env.run(pb)
    check(r.code == 1, "the loop is stopped and the run fails", r)
    check('step "prepare" was reached 20 times through on_failure jumps (last from "apply")' in r.err, "named", r)
    check("1 succeeded, 1 failed, 0 skipped; stopped at apply" in r.out, "the summary counts the last outcomes", r)
    fin = env.record("run.finished")["data"]
    check(fin["status"] == "failed" and fin["failed"] == 1 and fin["succeeded"] == 1 and fin["failed_step"] == "apply",
          "run.finished agrees: %r" % fin)
    check(len([x for x in env.journal() if x["type"] == "step.failed"]) == 20, "apply failed 20 times")
    check("step.started" not in env.events(step="after"), "the step after the loop never ran")
    s = env.irp("status", "r1", "--state-dir", env.state)
    check("succeeded  prepare" in s.out and "failed     apply" in s.out, "status agrees", s)


def test_when_condition_skips(env):
    pb = env.playbook('''
        step "maybe" { when = function(ctx) return ctx.vars.mode == "full" end,
          run = function(ctx) return 1 end },
        step "never" { when = false, run = function(ctx) return 1 end },
        step "always" { run = function(ctx) return { maybe = ctx.steps.maybe.status } end },
    ''', header='inputs = { mode = { default = "quick" } }')
    r = env.run(pb)
    check(r.code == 0, "ok", r)
    check(env.record("step.skipped", "maybe") and env.record("step.skipped", "never"), "skipped")
    check(env.record("step.succeeded", "always")["data"]["result"]["maybe"] == "skipped", "status")


def test_drill_simulates_exec(env):
    marker = os.path.join(env.dir, "must-not-exist")
    pb = env.playbook('''
        step "isolate" { approval = "ic",
          run = function(ctx)
            local r = ctx.exec{ "touch", "%s" }
            return { job = r.stdout, drill = ctx.drill }
          end,
          drill = { stdout = "isolation job 42 queued" } },
        step "m" { manual = "call legal" },
    ''' % marker)
    r = env.drill(pb, "--yes")
    check(r.code == 0, "drill ok", r)
    check(not os.path.exists(marker), "no command ran in the drill")
    check(env.record("step.succeeded", "isolate")["data"]["result"] == {"job": "isolation job 42 queued", "drill": True}, "simulated")
    check(env.record("step.exec", "isolate")["data"]["simulated"] is True, "journaled as simulated")
    check(all(x["mode"] == "drill" for x in env.journal()), "mode drill")
    check("[DRILL]" in r.out, "DRILL banner", r)


def test_step_exec_records_the_exact_argv(env):
    # "command" joins the arguments with spaces; the chain of custody needs
    # where each ends. A secret is named, never its value.
    token = canary("argv")
    pb = env.playbook('''
        step "x" { run = function(ctx)
          ctx.exec{ "printf", "%s|", "two words", "", "a\\tb", ctx.secret("ARGV_TOKEN"), 42 } end },
    ''')
    for mode in ("run", "drill"):
        r = env.irp(mode, pb, "--state-dir", env.state, "--run-id", mode, "--yes", env={"ARGV_TOKEN": token})
        check(r.code == 0, mode, r)
        d = env.record("step.exec", "x", run=mode)["data"]
        check(d["argv"] == ["printf", "%s|", "two words", "", "a\tb", {"secret": "ARGV_TOKEN"}, "42"],
              "%s: the argv as given: %r" % (mode, d["argv"]))
        check(d["command"] == "printf %s| two words  a\tb <secret ARGV_TOKEN> 42", d["command"])
    check(token not in open(env.journal_path("run")).read(), "the value stays out of the journal")


def test_exec_nonzero_fails_step_unless_check_false(env):
    pb = env.playbook('''
        step "strict" { on_failure = "continue", run = function(ctx) ctx.exec{ "sh", "-c", "echo boom >&2; exit 3" } end },
        step "lenient" { run = function(ctx) return ctx.exec{ "sh", "-c", "exit 4", check = false }.code end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "ok", r)
    reason = env.record("step.failed", "strict")["data"]["reason"]
    check("code 3" in reason and "boom" in reason, "names the exit code and stderr: %s" % reason)
    check(env.record("step.succeeded", "lenient")["data"]["result"] == 4, "check=false returns the code")


def test_exec_stdin_env_and_output_bound(env):
    pb = env.playbook('''
        step "s" { run = function(ctx)
            local a = ctx.exec{ "cat", stdin = "from stdin" }
            local b = ctx.exec{ "sh", "-c", "echo $IRP_T", env = { IRP_T = "envval" } }
            local c = ctx.exec{ "head", "-c", "3000000", "/dev/zero" }
            return { a = a.stdout, b = b.stdout, clen = #c.stdout, ctrunc = c.stdout_truncated }
          end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "ok", r)
    res = env.record("step.succeeded", "s")["data"]["result"]
    check(res == {"a": "from stdin", "b": "envval\n", "clen": 1048576, "ctrunc": True}, "%r" % res)


def test_exec_record_survives_output_cut_inside_a_character(env):
    # The journal keeps the first 8 KiB of each stream: a cut in the middle of
    # a UTF-8 character must not cost the step.exec record, and a NUL byte in
    # the output must not end the excerpt early.
    pb = env.playbook('''
        step "s" { run = function(ctx)
            local r = ctx.exec{ "sh", "-c", "head -c 8191 /dev/zero | tr '\\\\0' a; printf '\\\\303\\\\251tail'" }
            local z = ctx.exec{ "printf", "x\\\\0y" }
            return { n = #r.stdout, z = #z.stdout }
          end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "ok", r)
    check(env.record("step.succeeded", "s")["data"]["result"] == {"n": 8197, "z": 3}, "outputs", r)
    execs = [x["data"] for x in env.journal() if x["type"] == "step.exec"]
    check(len(execs) == 2, "both commands are on the record: %r" % [e.get("command") for e in execs], r)
    check(execs[0]["stdout"] == "a" * 8191, "excerpt cut before the character: %r" % execs[0]["stdout"][-8:])
    check(execs[1]["stdout"] == "x\0y", "NUL kept: %r" % execs[1]["stdout"])
    check(not any(x["type"] == "operator.note" for x in env.journal()), "no record was refused")


def test_attached_steps_shown_checked_journaled_and_resumed(env):
    pb = env.playbook('''
        step "a" { run = function(ctx) return 1 end },
        step "m" { manual = "wait here" },
    ''')
    local = env.write("local.lua", '''
        return attach { after = "a",
          step "tell-legal" { manual = "Call counsel." } }
    ''')
    r = env.irp("show", pb, "--attach", local)
    check(r.code == 0 and "tell-legal" in r.out and "attached from" in r.out, "show marks attached steps", r)
    bad = env.write("bad.lua", 'return attach { after = "nope", step "x" { manual = "y" } }\n')
    r = env.irp("check", pb, "--attach", bad)
    check(r.code == 65 and "bad.lua:1:" in r.err and "nope" in r.err, "check reports a missing target", r)
    r = env.run(pb, "--attach", local, stdin="done\n")
    check(r.code == 75, "stops at the second manual step (no more input)", r)
    started = env.record("step.started", "tell-legal")["data"]
    check(started["attached_from"] == local and started["defined_at"].startswith(local + ":"), "%r" % started)
    check(env.record("run.started")["data"]["attach"] == [local], "attach files recorded")
    r = env.irp("resume", "r1", "--state-dir", env.state, "--yes")
    check(r.code == 0, "resume reloads the attach file", r)
    check(env.events(step="tell-legal").count("step.started") == 1, "attached step not repeated")


def test_waiting_manual_step_escalates_while_the_prompt_waits(env):
    import subprocess, time
    from harness import IRP
    pb = env.playbook('''
        step "m" { manual = "Call the DBA", timeout = "10m" },
    ''', header='escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } } }')
    p = subprocess.Popen([IRP, "drill", pb, "--state-dir", env.state, "--run-id", "r1", "--speed", "3000"],
                         cwd=env.dir, env=env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # 10 drill minutes are 200 ms: the timer must fire while nobody answers
    out, err = p.communicate("done: DBA on the line\n", timeout=20)
    check(p.returncode == 0, "answered late, still succeeds: %s %s" % (out, err))
    esc = [x for x in env.journal() if x["type"] == "escalation.triggered"]
    check(len(esc) >= 2 and "has waited" in esc[1]["data"]["reason"] and esc[1]["data"]["tier"] == 2,
          "tier 2 while waiting: %r" % esc)


def test_lines_printed_while_a_prompt_waits_get_their_own_line_and_the_prompt_again(env):
    import subprocess, time
    from harness import IRP
    pb = env.playbook('''
        step "m" { manual = "Call the DBA", timeout = "10m" },
    ''', header='escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } } }')
    p = subprocess.Popen([IRP, "drill", pb, "--state-dir", env.state, "--run-id", "r1", "--speed", "3000"],
                         cwd=env.dir, env=env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    out, err = p.communicate("done: DBA on the line\n", timeout=20)
    check(p.returncode == 0, "succeeds: %s %s" % (out, err))
    lines = out.splitlines()
    prompts = [i for i, l in enumerate(lines) if "done / failed / skip" in l]
    check(len(prompts) >= 2, "the prompt is printed again after the escalation: %s" % out)
    check(all(l.rstrip().endswith(">") for l in (lines[i] for i in prompts[:-1])),
          "nothing is written onto a waiting prompt's line: %s" % out)
    check(lines[prompts[-1]].rstrip().endswith("> done: DBA on the line"), "the answer follows the last prompt: %s" % out)
    between = lines[prompts[0] + 1:prompts[-1]]
    check(any("escalation tier 2" in l for l in between), "the escalation stands between the prompts: %s" % out)


def test_breached_objective_escalates(env):
    pb = env.playbook('''
        step "slow" { phase = "containment", timeout = "1h", run = function(ctx) ctx.sleep("5m") return 1 end },
    ''', header='''phases = { "detection", "containment" },
        objectives = { contain_within = "1m" },
        escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } } }''')
    r = env.drill(pb, "--speed", "600")
    check(r.code == 0, "drill", r)
    esc = [x for x in env.journal() if x["type"] == "escalation.triggered"]
    check(any("objective contain_within" in x["data"]["reason"] for x in esc), "breach escalated: %r" % esc)


def test_playbook_title_is_templated_with_the_inputs(env):
    pb = env.write("pb.lua", '''
        return playbook { id = "t", title = "P1 {{host}} ({{ region }})",
          inputs = { host = { required = true }, region = { default = "eu-west" } },
          escalation = { { notify = { "stdout" } } },
          steps = { step "a" { run = function(ctx) end } } }
    ''')
    r = env.run(pb, "-v", "host=web-07")
    check(r.code == 0, "run succeeds", r)
    check("== P1 web-07 (eu-west) (t)" in r.out and "{{" not in r.out, "the run header is rendered", r)
    check("[tier 1] P1 web-07 (eu-west): run started" in r.out, "so is the notification", r)
    check(env.record("run.started")["data"]["playbook"]["title"] == "P1 web-07 (eu-west)", "and the record")
    r = env.irp("show", pb)
    check("P1 {{host}} ({{ region }})" in r.out, "irp show prints the title as written", r)
    bad = env.write("bad.lua", '''
        return playbook { id = "t",
          title = "P1 {{hots}} {{steps.a.status}}",
          inputs = { host = { required = true } },
          steps = { step "a" { run = function(ctx) end } } }
    ''')
    r = env.irp("check", bad)
    check(r.code == 65 and bad + ":3: unknown template {{hots}} in title of playbook: not an input of the "
          "playbook (did you mean {{host}}?)" in r.err, "an unknown input in the title is an error", r)
    check(bad + ":3: template {{steps.a.status}} in title of playbook: only inputs" in r.err,
          "steps cannot be named in the title", r)


def test_resume_does_not_page_again_for_an_objective_already_breached(env):
    pb = env.playbook('''
        step "slow" { phase = "containment", timeout = "1h", run = function(ctx) ctx.sleep("3m") return 1 end },
        step "ask" { phase = "containment", manual = "Confirm the host is cut off" },
    ''', header='''phases = { "detection", "containment" },
        objectives = { contain_within = "1m" },
        escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } }, { after = "9h", notify = { "ciso" } } }''')
    r = env.drill(pb, "--speed", "600", stdin="")
    check(r.code == 75, "stops at the manual step for want of an answer", r)

    def breaches():
        return [x for x in env.journal() if x["type"] == "escalation.triggered"
                and "objective contain_within" in x["data"]["reason"]]
    check(len(breaches()) == 1 and breaches()[0]["data"].get("objective") == "contain_within",
          "breached once, the objective named: %r" % breaches())
    r = env.irp("resume", "r1", "--state-dir", env.state, "--yes")
    check(r.code == 0, "resume", r)
    check(len(breaches()) == 1, "the resume does not page again for the same breach: %r" % breaches())


def test_a_tiny_wait_timeout_does_not_flood_the_pager(env):
    import subprocess, time
    from harness import IRP
    pb = env.playbook('''
        step "m" { manual = "Call the DBA", timeout = "1ms" },
    ''', header='escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } } }')
    p = subprocess.Popen([IRP, "run", pb, "--state-dir", env.state, "--run-id", "r1"], cwd=env.dir, env=env.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    out, err = p.communicate("done\n", timeout=20)
    check(p.returncode == 0, "answered: %s %s" % (out[-500:], err))
    waits = [x for x in env.journal() if x["type"] == "escalation.triggered" and "has waited" in x["data"]["reason"]]
    check(len(waits) == 1, "one escalation at the timeout, the next not before 5 minutes: %r" % waits)
