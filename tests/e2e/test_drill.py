"""End-to-end tests of tabletop drills with scenarios (irp drill --scenario):
every shipped playbook drilled unattended with its scenario, injects at a
drill time and at step start/end, scripted answers, simulated outcomes,
the drill clock, the scorecard and its verdict, and bad scenario files."""
import json
import os

from harness import SLACK, check

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

SHIPPED = [
    ("ransomware.lua", "ransomware-friday-night.lua", ["-v", "host=web-07"]),
    ("phishing.lua", "phishing-payroll-lure.lua",
     ["-v", "message_id=<20261125.4411@micros0ft-support.net>", "-v", "reporter=alice"]),
    ("db-failover.lua", "db-failover-primary-lost.lua",
     ["-v", "primary=pg-01.db.internal.example", "-v", "standby=pg-02.db.internal.example"]),
]


def scenario(env, body, name="scn.lua"):
    return env.write(name, "return scenario {\n" + body + "\n}\n")


def test_drill_every_shipped_playbook_with_its_scenario(env):
    for i, (pb, scn, args) in enumerate(SHIPPED):
        run = "s%d" % i
        r = env.irp("drill", os.path.join(ROOT, "playbooks", pb), "--scenario",
                    os.path.join(ROOT, "playbooks", "scenarios", scn), "--state-dir", env.state,
                    "--run-id", run, *args)
        check(r.code == 0, "%s with %s: every expectation held (exit 0)" % (pb, scn), r)
        card = env.record("drill.scorecard", run=run)["data"]
        check(card["verdict"] == "passed" and card["mismatches"] == [], "verdict passed", card)
        check("DRILL SCORECARD" in r.out and "[INJECT]" in r.out, "scorecard and injects shown", r)
        recs = env.journal(run)
        check(all(x["mode"] == "drill" for x in recs), "every record is a drill record")
        check(all(x["data"]["simulated"] for x in recs if x["type"] == "step.exec"), "every exec simulated")
        check(any(x["type"] == "inject.shown" for x in recs), "injects journaled")
        check(any(x["type"] == "step.retried" for x in recs), "a scripted failure, then a retry")
        v = env.irp("verify", run, "--state-dir", env.state)
        check(v.code == 0, "the drill's journal verifies", v)


def test_drill_injects_at_time_and_step_start_end(env):
    pb = env.playbook('''
        step "a" { timeout = "1h", run = function(ctx) ctx.sleep("10m") return 1 end },
        step "b" { run = function(ctx) return 2 end },
    ''')
    scn = scenario(env, '''
      speed = 600,
      injects = {
        { at = "T+5m", text = "The CEO calls." },
        { on = "step_start", step = "b", text = "Before b." },
        { on = "step_end", step = "b", text = "After b." },
        { at = "T+10h", text = "Never reached." },
      },
    ''')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0, "drill ok", r)
    check("[INJECT]" in r.out and "The CEO calls." in r.out, "inject shown in a frame", r)
    recs = env.journal()
    kinds = [(x["type"], x.get("step"), x["data"].get("text")) for x in recs
             if x["type"] in ("inject.shown", "step.started", "step.succeeded")]
    i_ceo = kinds.index(("inject.shown", None, "The CEO calls."))
    check(kinds.index(("step.started", "a", None)) < i_ceo < kinds.index(("step.succeeded", "a", None)),
          "the timed inject fires while step a sleeps", kinds)
    check(kinds.index(("inject.shown", "b", "Before b.")) < kinds.index(("step.started", "b", None)),
          "step_start inject before b starts", kinds)
    check(kinds.index(("inject.shown", "b", "After b.")) > kinds.index(("step.succeeded", "b", None)),
          "step_end inject after b ends", kinds)
    ceo = [x for x in recs if x["type"] == "inject.shown" and x["data"]["text"] == "The CEO calls."][0]
    check(300000 <= ceo["data"]["at_ms"] < 540000, "at_ms on the drill clock", ceo)
    check("| Never reached." not in r.out, "a later inject is not shown", r)
    card = env.record("drill.scorecard")["data"]
    inj = card["injects"]
    check(inj["shown"] == 3 and inj["total"] == 4, "scorecard counts injects", card)
    check(len(inj["not_shown"]) == 1 and inj["not_shown"][0]["trigger"] == "T+10h"
          and inj["not_shown"][0]["text"] == "Never reached." and "the drill ended at T+" in inj["not_shown"][0]["why"]
          and inj["not_shown"][0]["line"] > 0, "the inject never reached is listed with why", card)
    check("inject not shown (T+10h; the drill ended at T+" in r.out and "Never reached." in r.out,
          "and printed on the scorecard", r)
    check(all("sim_ms" in x["data"] for x in recs if x["type"].startswith("step.")), "sim_ms on step records")


def test_drill_scripted_answers_run_unattended(env):
    pb = env.playbook('''
        step "m" { manual = "Call the ISP" },
        step "gate" { approval = "ic", run = function(ctx) return "ran" end },
        step "q" { run = function(ctx)
            return { pick = ctx.ask("Which site?", { "east", "west" }), sure = ctx.confirm("Sure?") } end },
        step "f" { manual = "Check the logs", on_failure = "continue" },
    ''')
    scn = scenario(env, '''
      answers = {
        m = "done: ISP ticket 4411",
        gate = "deny: not yet",
        q = { ask = "west", confirm = "no" },
        f = "failed: logs rotated away",
      },
    ''')
    r = env.drill(pb, "--scenario", scn, stdin="")
    check(r.code == 0, "scripted answers: the drill runs unattended", r)
    m = env.record("manual.answered", "m")["data"]
    check((m["answer"], m["via"], m["note"]) == ("done", "scenario", "ISP ticket 4411"), "manual scripted", m)
    check(env.record("approval.denied", "gate")["data"]["via"] == "scenario", "approval denied by the scenario")
    check(env.record("step.skipped", "gate")["data"]["reason"] == "approval denied", "denied step skipped")
    q = env.record("step.succeeded", "q")["data"]["result"]
    check(q == {"pick": "west", "sure": False}, "ask and confirm scripted", q)
    check(env.record("step.failed", "f"), "failed answer fails the step")
    card = env.record("drill.scorecard")["data"]
    check([d["answer"] for d in card["decisions"]] == ["done", "deny", "west", "no", "failed"], "decisions", card)


def test_drill_outcomes_fail_twice_then_succeed_last_repeats(env):
    pb = env.playbook('''
        step "isolate" { retries = 3, backoff = "1s", run = function(ctx)
            local r = ctx.exec { "edr", "isolate" } return r.stdout end,
          drill = { stdout = "from the drill table" } },
        step "twice" { run = function(ctx)
            local a = ctx.exec { "x" } local b = ctx.exec { "y" } return a.stdout .. b.stdout end },
        step "plain" { run = function(ctx) return ctx.exec { "z" }.stdout end,
          drill = { stdout = "table" } },
    ''')
    scn = scenario(env, '''
      outcomes = {
        isolate = { { code = 1, stderr = "EDR timeout" }, { code = 1 }, { stdout = "job 42" } },
        twice = { { stdout = "same" } },
      },
    ''')
    r = env.drill(pb, "--scenario", scn, "--speed", "100")
    check(r.code == 0, "drill ok", r)
    codes = [x["data"]["code"] for x in env.journal() if x["type"] == "step.exec" and x["step"] == "isolate"]
    check(codes == [1, 1, 0], "consecutive exec calls follow the list across attempts", codes)
    check("EDR timeout" in env.record("step.retried", "isolate")["data"]["reason"], "stderr in the failure")
    check(env.record("step.succeeded", "isolate")["data"]["result"] == "job 42", "third outcome")
    check(env.record("step.succeeded", "twice")["data"]["result"] == "samesame", "the last outcome repeats")
    check(env.record("step.succeeded", "plain")["data"]["result"] == "table", "no outcome: the drill table")


def test_drill_outcomes_take_every_drill_table_field(env):
    # A scenario outcome has the fields of a step's drill table: json for
    # ctx.http (its JSON text the body, content-type implied), and
    # exec = { ... } / http = { ... } for a step that does both.
    pb = env.playbook('''
        step "lookup" { run = function(ctx)
            local r = ctx.http { url = "https://edr.example/api/hosts/web-07" }
            return { status = r.status, ctype = r.headers["content-type"], body = r.body }
          end, drill = { status = 500, body = "from the drill table" } },
        step "both" { run = function(ctx)
            local e = ctx.exec { "edr", "isolate" }
            local h = ctx.http { method = "POST", url = "https://edr.example/api/tickets" }
            return e.stdout .. " " .. h.status .. " " .. h.body
          end },
    ''')
    scn = scenario(env, '''
      outcomes = {
        lookup = { { status = 200, json = { host = "web-07", isolated = true } } },
        both = { { exec = { stdout = "queued" }, http = { status = 201, body = "ticket 7" } } },
      },
    ''')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0, "a scenario with json and exec/http outcomes drills", r)
    got = env.record("step.succeeded", "lookup")["data"]["result"]
    check(got["status"] == 200 and got["ctype"] == "application/json", "the scenario's answer, not the drill table", got)
    check(json.loads(got["body"]) == {"host": "web-07", "isolated": True}, "the body is the outcome's JSON text", got)
    check(env.record("step.succeeded", "both")["data"]["result"] == "queued 201 ticket 7",
          "exec and http each take their part of the outcome")
    bad = scenario(env, 'outcomes = {\n  lookup = { { status = 200,\n    jsn = { ok = true } } } },', name="bad.lua")
    r = env.drill(pb, "--scenario", bad)
    check(r.code == 65 and "bad.lua:4: outcome: unknown field 'jsn' (did you mean 'json'?)" in r.err,
          "a typo in an outcome: file:line", r)


def test_drill_speed_scales_clock_and_overrides_scenario(env):
    pb = env.playbook('step "a" { timeout = "1h", run = function(ctx) ctx.sleep("4m") return 1 end },')
    scn = scenario(env, 'speed = 60,\n  injects = { { at = "T+1m", text = "one minute in" } },')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0 and 3.0 <= r.elapsed < 12, "scenario speed 60: 4m takes about 4 s", r)
    check(env.record("inject.shown")["data"]["at_ms"] >= 60000, "inject at T+1m on the drill clock")
    r = env.irp("drill", pb, "--scenario", scn, "--speed", "480", "--state-dir", env.state, "--run-id", "r2")
    check(r.code == 0 and r.elapsed < 3.0, "--speed 480 overrides the scenario: about 0.5 s", r)
    card = env.record("drill.scorecard", run="r2")["data"]
    check(card["speed"] == 480 and card["total_sim_ms"] >= 240000, "simulated total time", card)


def test_drill_timeouts_run_on_the_drill_clock(env):
    # At 60x a 1-minute timeout is one real second (a drilled step always has
    # up to 2 real seconds to compute): a 5-minute sleep times out, 30 s does not.
    pb = env.playbook('''
        step "slow" { timeout = "1m", on_failure = "continue", run = function(ctx) ctx.sleep("5m") return 1 end },
        step "quick" { timeout = "1m", run = function(ctx) ctx.sleep("30s") return 2 end },
    ''')
    r = env.drill(pb, "--speed", "60")
    check(r.code == 0 and r.elapsed < 5 * SLACK, "the drill ends in seconds, not minutes", r)
    failed = env.record("step.failed", "slow")["data"]
    check(failed["kind"] == "timeout" and failed["reason"] == "step timed out after 1m", "the playbook's timeout named",
          failed)
    check(env.record("step.succeeded", "quick")["data"]["result"] == 2, "a sleep within the timeout succeeds")


def test_drill_expectation_mismatch_exits_1(env):
    pb = env.playbook('''
        step "gate" { approval = "ic", run = function(ctx) return 1 end },
        step "boom" { run = function(ctx) ctx.fail("broken") end, on_failure = "continue" },
    ''', header='escalation = { { notify = { "ops" } } },')
    scn = scenario(env, '''
      answers = { gate = "deny" },
      expect = { status = "succeeded", decisions = { gate = "approve" }, escalations = { 1, 2 },
                 skipped = { }, failed = { "boom" } },
    ''')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 1, "an expectation that did not hold: exit 1", r)
    check("decision at \"gate\": expected approve, got deny" in r.out, "decision mismatch printed", r)
    check("expected escalation tiers 1, 2, fired 1" in r.out, "escalation mismatch printed", r)
    check("step \"gate\" was skipped, which the scenario did not expect" in r.out, "skipped mismatch", r)
    card = env.record("drill.scorecard")["data"]
    check(card["verdict"] == "failed" and len(card["mismatches"]) == 3, "three mismatches", card)
    check(card["escalations_missed"] == [2] and card["escalations_unexpected"] == [], "tier 2 should have fired", card)
    check("escalation tiers that should have fired and did not: 2" in r.out, "and the scorecard says so", r)
    check("decision gate approval: deny (scenario)  [NOT AS EXPECTED: approve]" in r.out,
          "the decision is shown against the expected one", r)
    ok = scenario(env, 'answers = { gate = "approve" }, expect = { status = "succeeded", failed = { "boom" } },',
                  name="ok.lua")
    r = env.irp("drill", pb, "--scenario", ok, "--state-dir", env.state, "--run-id", "r2")
    check(r.code == 0, "a step failing as expected: exit 0", r)
    ok = scenario(env, 'answers = { gate = "approve: Priya, by phone" }, expect = { decisions = { gate = "approve" }, '
                  'failed = { "boom" } },', name="ok2.lua")
    r = env.irp("drill", pb, "--scenario", ok, "--state-dir", env.state, "--run-id", "r3")
    check(r.code == 0 and "decision gate approval: approve (scenario) - Priya, by phone  [expected approve]" in r.out,
          "who decided, and as expected", r)
    check(env.record("drill.scorecard", run="r3")["data"]["decisions"][0]["note"] == "Priya, by phone",
          "the note on the journaled scorecard")


def test_drill_bad_scenario_exits_65_with_file_line(env):
    pb = env.playbook('step "isolate" { run = function(ctx) return 1 end },\nstep "call-isp" { manual = "Call" },')
    cases = [
        ("title = \"x\",\n  injets = {},", ":3: scenario: unknown field 'injets' (did you mean 'injects'?)"),
        ("title = \"x\",\n  answers = { isolat = \"done\" },", ":3: answers names step \"isolat\", which the playbook does not have (did you mean \"isolate\"?)"),
        ("title = \"x\",\n  answers = { [\"call-isp\"] = \"dnoe\" },", ":3: answers[\"call-isp\"]: 'dnoe' is not a manual answer (done, failed or skip); did you mean 'done'?"),
        ("title = \"x\",\n  injects = { { at = \"soon\", text = \"t\" } },", ":3: injects[1]: at = \"soon\" is not a drill time"),
        ("title = \"x\"\n  speed = 2,", ":3:"),
        ("title = \"x\",\n  answers = { isolate = \"approve\" },", ":3: answers[\"isolate\"]: 'approve' answers an approval, but step \"isolate\" is an automated step with no approval"),
        ("speed = 0,", ":2: speed must be a number from 1 to 100000"),
        ("outcomes = { isolate = { { code = \"1\" } } },", ":2: outcomes[\"isolate\"][1]: code and status are integers"),
    ]
    for i, (body, want) in enumerate(cases):
        scn = scenario(env, body, name="bad%d.lua" % i)
        r = env.irp("drill", pb, "--scenario", scn, "--state-dir", env.state, "--run-id", "b%d" % i)
        check(r.code == 65, "bad scenario %d: exit 65" % i, r)
        check(("bad%d.lua" % i + want) in r.err, "file:line message %r" % want, r)
        check(not os.path.exists(os.path.join(env.state, "runs", "b%d" % i)), "nothing recorded")
    loop = env.write("loop.lua", "while true do end\n")
    r = env.irp("drill", pb, "--scenario", loop, "--state-dir", env.state)
    check(r.code == 65 and "took longer than" in r.err, "an endless scenario is stopped", r)
    r = env.irp("drill", pb, "--scenario", os.path.join(env.dir, "missing.lua"), "--state-dir", env.state)
    check(r.code == 65 and "missing.lua: cannot read the scenario" in r.err, "missing file", r)
    other = os.path.join(ROOT, "playbooks", "scenarios", "ransomware-friday-night.lua")
    r = env.irp("drill", pb, "--scenario", other, "--state-dir", env.state, "--run-id", "other")
    check(r.code == 65 and "is written for %s" % os.path.realpath(os.path.join(ROOT, "playbooks", "ransomware.lua"))
          in r.err and "this drills %s" % os.path.realpath(pb) in r.err, "a scenario for another playbook: said", r)
    check(not os.path.exists(os.path.join(env.state, "runs", "other")), "nothing recorded")


def test_drill_starts_no_process(env):
    marker = os.path.join(env.dir, "created-by-a-command")
    pb = env.playbook('''
        step "touch" { run = function(ctx) return ctx.exec { "touch", "%s" }.code end },
        step "shell" { run = function(ctx) return ctx.exec { "touch %s.sh", shell = true }.code end },
    ''' % (marker, marker))
    scn = scenario(env, 'outcomes = { touch = { { code = 0, stdout = "" } } },')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0, "drill ok", r)
    check(not os.path.exists(marker) and not os.path.exists(marker + ".sh"), "no command ran in the drill")


def test_drill_no_answer_names_step_or_yes_falls_back(env):
    pb = env.playbook('''
        step "m1" { manual = "Scripted" },
        step "m2" { manual = "Not scripted" },
    ''')
    scn = scenario(env, 'answers = { m1 = "done" },')
    r = env.drill(pb, "--scenario", scn, stdin="")
    check(r.code == 75, "no scripted answer and no input: exit 75", r)
    check("no answer at step \"m2\"" in r.out, "names the step", r)
    check(env.record("run.interrupted")["data"]["step"] == "m2", "journaled")
    check(env.record("drill.scorecard")["data"]["status"] == "no-answer", "scorecard still written")
    r = env.irp("drill", pb, "--scenario", scn, "--yes", "--state-dir", env.state, "--run-id", "r2")
    check(r.code == 0, "--yes answers what the scenario does not", r)
    check(env.record("manual.answered", "m1", run="r2")["data"]["via"] == "scenario", "scenario first")
    check(env.record("manual.answered", "m2", run="r2")["data"]["via"] == "--yes", "then --yes")


def drill_typing(env, pb, lines, *args):
    """Drills pb while a facilitator types lines: (delay before, text)."""
    import subprocess
    import time
    from harness import IRP, Result
    p = subprocess.Popen([IRP, "drill", pb, "--state-dir", env.state, "--run-id", "r1", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env.env, cwd=env.dir)
    t0 = time.monotonic()
    for delay, text in lines:
        time.sleep(delay)
        p.stdin.write(text + "\n")
        p.stdin.flush()
    p.stdin.close()
    p.stdin = None  # closed: communicate only reads
    out, err = p.communicate(timeout=60)
    return Result(p.returncode, out, err, time.monotonic() - t0)


def test_drill_pause_stops_the_clock_until_resume(env):
    # At 120x one real second is two drill minutes: without the 2 s pause the
    # 2-minute tier, the 2-minute wait escalation and the T+2m inject would all fire.
    pb = env.playbook('''
        step "call" { manual = "Call the ISP", timeout = "2m" },
        step "ask" { run = function(ctx) return ctx.ask("Which host?", { "web-07", "web-08" }) end },
        step "free" { run = function(ctx) return ctx.ask("Anything else?") end },
    ''', header='escalation = { { notify = { "ops" } }, { after = "2m", notify = { "ops" } } },')
    scn = scenario(env, 'speed = 120, injects = { { at = "T+2m", text = "The press calls." } },')
    r = drill_typing(env, pb, [(0.0, "pause"), (2.0, "note: facilitator explains the playbook"),
                               (0.0, "resume"), (0.0, "done"), (0.0, "pause"), (0.0, "resume"), (0.0, "web-07"),
                               (0.0, "pause"), (0.0, "resume"), (0.0, "nothing")], "--scenario", scn)
    check(r.code == 0, "drill ok", r)
    check("[PAUSED]" in r.out and "[RESUMED]" in r.out, "pause and resume shown", r)
    recs = env.journal()
    types = [x["type"] for x in recs]
    check(types.count("drill.paused") == 3 and types.count("drill.resumed") == 3, "three pauses journaled", types)
    first = [x for x in recs if x["type"] == "drill.resumed"][0]["data"]
    # 2 s from the line "pause" written to "resume": the pause starts when irp
    # reads the line, later than it was written on a loaded machine (1893 ms
    # was seen under ASan); a clock that never paused would show none.
    check(first["paused_ms"] >= 1500 and first["how"] == "resume", "the first pause lasted about 2 s", first)
    check(any(x["type"] == "operator.note" and x["data"].get("note") == "facilitator explains the playbook"
              for x in recs), "a note taken while paused")
    tiers = [x["data"]["tier"] for x in recs if x["type"] == "escalation.triggered"]
    check(tiers == [1], "no timed tier and no wait escalation while paused: %r" % tiers)
    check("inject.shown" not in types, "no inject while paused")
    ask = [x for x in recs if x["type"] == "operator.answered"]
    check(ask[0]["data"]["answer"] == "web-07" and ask[1]["data"]["answer"] == "nothing",
          "ctx.ask answered after the pauses", ask)
    card = env.record("drill.scorecard")["data"]
    check(card["total_sim_ms"] < 120000 and card["paused_ms"] >= 1500, "paused time is not drill time", card)
    check("paused by the facilitator for" in r.out, "the scorecard shows the pause", r)


def test_drill_pause_at_end_of_input_stays_resumable(env):
    pb = env.playbook('step "m" { manual = "Do it" },')
    r = env.drill(pb, stdin="pause\n")
    check(r.code == 75, "input ended while paused: exit 75, resumable", r)
    check(env.record("drill.resumed")["data"]["how"] == "input ended", "the pause's end is recorded")
    r = env.run(pb, "--run-id", "live", stdin="pause\ndone\n")
    check(r.code == 0 and "there is no pause in a live run" in r.out, "live runs explain there is no pause", r)
    check("drill.paused" not in env.events("live"), "nothing paused live")


# ------------------------------------------------------------ irp check --drill

CHECK_DRILL_PB = '''
        step "scan" { run = function(ctx)
            local r = ctx.exec { "touch", "%s" }
            return { fqdn = r.stdout:match("(%%S+)") }
          end },
        step "use" { run = function(ctx)
            local f = ctx.steps.scan.result.fqdn
            return { f = f }
          end },
        step "tell" { manual = "Call the owner of {{steps.scan.result.fqdn}}" },
        step "count" { run = function(ctx)
            return tonumber(ctx.exec { "wc", "-l", "/etc/hosts" }.stdout:match("(%%d+)")) + 1
          end, on_failure = "continue" },
        step "pure" { run = function(ctx) return { a = 1 } end },
        step "usepure" { run = function(ctx) return ctx.steps.pure.result.b end },
'''


def test_check_drill_names_reads_nobody_provides(env):
    marker = os.path.join(env.dir, "made-by-scan")
    pb = env.playbook(CHECK_DRILL_PB % marker, header='inputs = { host = { required = true } },')
    tmp = os.path.join(env.dir, "tmp")
    os.makedirs(tmp)
    r = env.irp("check", pb, "--drill", env={"TMPDIR": tmp})
    check(r.code == 65, "a drill would trip: exit 65", r)
    lines = open(pb).read().splitlines()
    use_line = next(i for i, l in enumerate(lines, 1) if "ctx.steps.scan.result.fqdn" in l)
    scan_line = next(i for i, l in enumerate(lines, 1) if 'step "scan"' in l)
    tell_line = next(i for i, l in enumerate(lines, 1) if 'step "tell"' in l)
    count_line = next(i for i, l in enumerate(lines, 1) if 'step "count"' in l)
    check('%s:%d: step "use" reads steps.scan.result.fqdn, which a drill does not provide: step "scan" (%s:%d) '
          'has no simulated outcome for its ctx.exec' % (pb, use_line, pb, scan_line) in r.err,
          "the read, its file:line and the step that should provide it", r)
    check('%s:%d: step "tell" reads steps.scan.result.fqdn' % (pb, tell_line) in r.err, "a template read too", r)
    check('%s:%d: step "count" fails in a drill (error):' % (pb, count_line) in r.err
          and "its ctx.exec has no simulated outcome" in r.err, "a step failing on an empty simulated output", r)
    check("usepure" not in r.err, "plain Lua values are not the drill's business", r)
    check('note: %s:%d: step "scan": ctx.exec has no simulated outcome' % (pb, scan_line) in r.out, "notes", r)
    check('input host not given' in r.out and "BAD %s: drill check: 3 problems" % pb in r.out, "summary", r)
    check(not os.path.exists(marker), "the probe ran no command")
    check(os.listdir(tmp) == [] and not os.path.exists(os.path.join(env.dir, ".irp")), "the probe keeps nothing")

    # The same playbook, its values provided: by a drill table, or by a scenario.
    fixed = env.playbook((CHECK_DRILL_PB % marker).replace(
        'end },\n        step "use"', 'end, drill = { stdout = "web-07.example.com" } },\n        step "use"').replace(
        'on_failure = "continue" },', 'on_failure = "continue", drill = { stdout = "12 /etc/hosts" } },'),
        header='inputs = { host = { required = true } },', name="fixed.lua")
    r = env.irp("check", fixed, "--drill", "-v", "host=web-07")
    check(r.code == 0 and "drill check: 6 steps drilled, every value a step reads is provided" in r.out, "fixed", r)
    scn = scenario(env, 'outcomes = { scan = { { stdout = "db-01" } }, count = { { stdout = "3" } } },')
    r = env.irp("check", pb, "--drill", "--scenario", scn, "-v", "host=web-07")
    check(r.code == 0 and r.err == "", "a scenario's outcomes provide the values too", r)


def test_check_drill_shipped_playbooks_and_usage(env):
    for pb, scn, args in SHIPPED:
        r = env.irp("check", os.path.join(ROOT, "playbooks", pb), "--drill", "--scenario",
                    os.path.join(ROOT, "playbooks", "scenarios", scn), *args)
        check(r.code == 0 and "every value a step reads is provided" in r.out, "%s checks clean" % pb, r)
    r = env.irp("check", os.path.join(ROOT, "playbooks", "phishing.lua"), "--drill")
    check(r.code == 0 and 'the drill stopped at step "check-inputs"' in r.out and "not checked" in r.out,
          "placeholder inputs a playbook refuses: said, not hidden", r)
    r = env.irp("check", os.path.join(ROOT, "playbooks", "phishing.lua"), "--scenario", "x.lua")
    check(r.code == 64 and "go with --drill" in r.err, "--scenario without --drill", r)
    bad = env.playbook('step "a" { run = function(ctx) return 1 end, tiemout = "1s" },', name="bad.lua")
    r = env.irp("check", bad, "--drill")
    check(r.code == 65 and "did you mean" in r.err and "drill check" not in r.out, "a broken playbook is not drilled", r)


# ------------------------------------------------------------ irp test

def test_irp_test_drills_every_scenario_and_says_pass_or_fail(env):
    r = env.irp("test", os.path.join(ROOT, "playbooks"))
    check(r.code == 0 and r.out.count("PASS ") == 3 and "3 passed, 0 failed" in r.out,
          "the shipped playbooks' scenarios pass in one command", r)
    r = env.irp("drill", "--scenario", os.path.join(ROOT, "playbooks", "scenarios", "ransomware-friday-night.lua"),
                "--state-dir", env.state, "--run-id", "named")
    check(r.code == 0 and env.record("run.started", run="named")["data"]["inputs"]["host"] == "web-07",
          "a scenario names its playbook and inputs: drill needs no playbook argument", r)

    # An author's own directory: a passing, a failing and a broken scenario.
    env.write("mine/pb.lua", '''
        return playbook { id = "mine", title = "Mine", inputs = { host = { required = true } },
          steps = {
            step "gate" { approval = "ic", run = function(ctx) return ctx.vars.host end },
            step "call" { manual = "Call {{host}}" },
          } }
    ''')
    env.write("mine/scenarios/a-good.lua", '''
        return scenario { playbook = "../pb.lua", inputs = { host = "web-07" },
          answers = { gate = "approve", call = "done" }, expect = { status = "succeeded" } }
    ''')
    env.write("mine/scenarios/b-wrong.lua", '''
        return scenario { playbook = "../pb.lua", inputs = { host = "web-07" },
          answers = { gate = "deny", call = "done" }, expect = { decisions = { gate = "approve" } } }
    ''')
    env.write("mine/scenarios/c-unanswered.lua", '''
        return scenario { playbook = "../pb.lua", inputs = { host = "web-07" }, answers = { gate = "approve" } }
    ''')
    env.write("mine/scenarios/d-orphan.lua", 'return scenario { title = "no playbook" }\n')
    env.write("mine/scenarios/e-broken.lua", 'return scenario { titel = "typo" }\n')
    tmp = os.path.join(env.dir, "tmp")
    os.makedirs(tmp)
    r = env.irp("test", os.path.join(env.dir, "mine"), env={"TMPDIR": tmp})
    check(r.code == 1 and "1 passed, 4 failed" in r.out, "one passes, four fail: exit 1", r)
    check("PASS %s" % os.path.join(env.dir, "mine", "scenarios", "a-good.lua") in r.out, "the good one passes", r)
    check("decision at \"gate\": expected approve, got deny" in r.out, "a failure lists its mismatches", r)
    check("no answer at step \"call\"" in r.out, "an unanswered prompt: the drill's own words", r)
    check("names no playbook: add playbook =" in r.out, "a scenario without a playbook", r)
    check("e-broken.lua:1:" in r.out and "did you mean 'title'" in r.out, "a broken scenario: file:line", r)
    check(os.listdir(tmp) == [], "nothing left behind")
    r = env.irp("test", os.path.join(env.dir, "mine", "scenarios", "a-good.lua"))
    check(r.code == 0 and "1 passed, 0 failed" in r.out, "one scenario by name", r)
    r = env.irp("test", "--frobnicate")
    check(r.code == 64, "usage error", r)


def test_drill_resume_carries_on_with_its_scenario(env):
    pb = env.playbook('''
        step "iso" { retries = 1, backoff = "1s", run = function(ctx) return ctx.exec { "isolate" }.stdout end },
        step "gate" { approval = "ic", run = function(ctx) return 1 end },
        step "m2" { manual = "Call the ISP" },
        step "after" { run = function(ctx) return ctx.exec { "check" }.stdout end },
    ''')
    scn = scenario(env, '''
      speed = 60,
      answers = { gate = "approve" },
      outcomes = { iso = { { code = 1, stderr = "busy" }, { stdout = "isolated" } }, after = { { stdout = "after-1" } } },
      injects = { { on = "step_end", step = "iso", text = "Iso done." },
                  { on = "step_start", step = "after", text = "After starts." } },
      expect = { status = "succeeded", decisions = { gate = "approve", m2 = "done" } },
    ''')
    r = env.drill(pb, "--scenario", scn, stdin="")
    check(r.code == 75 and 'no answer at step "m2"' in r.out, "the drill stops at the unscripted prompt", r)
    check(env.record("run.started")["data"]["scenario"] == os.path.realpath(scn), "the scenario is on the record")
    r = env.irp("resume", "r1", "--state-dir", env.state, "--yes")
    check(r.code == 0, "resumed with its scenario, every expectation held across both parts", r)
    recs = env.journal()
    shown = [x["data"]["text"] for x in recs if x["type"] == "inject.shown"]
    check(shown == ["Iso done.", "After starts."], "each inject shown once across the resume: %r" % shown)
    check(env.record("step.succeeded", "after")["data"]["result"] == "after-1", "the scenario's outcome after resume")
    cards = [x["data"] for x in recs if x["type"] == "drill.scorecard"]
    card = cards[-1]
    decided = {(d["step"], d["answer"], d["via"]) for d in card["decisions"]}
    check(("gate", "approve", "scenario") in decided and ("m2", "done", "--yes") in decided,
          "the scorecard covers the whole exercise: %r" % card["decisions"])
    check(card["verdict"] == "passed" and card["injects"]["shown"] == 2, "verdict and injects", card)
    sims = [x["data"]["sim_ms"] for x in recs if "sim_ms" in x["data"]]
    check(sims == sorted(sims), "the drill clock carries on from where it stopped: %r" % sims)


def test_check_drill_waits_for_nothing_and_survives_a_spinning_step(env):
    pb = env.playbook('''
        step "spin" { timeout = "1s", on_failure = "continue", run = function(ctx) while true do end end },
        step "wait" { manual = "Call", timeout = "1h" },
        step "nap" { timeout = "3h", run = function(ctx) ctx.sleep("2h") return 1 end },
        step "huge" { run = function(ctx) return string.rep("x", 1 << 40) end, on_failure = "continue" },
    ''')
    r = env.irp("check", pb, "--drill", timeout=20)
    check(r.code == 65 and r.elapsed < 10 * SLACK, "ends in seconds, not hours", r)
    check('step "spin" fails in a drill (timeout)' in r.err, "the spinning step is named", r)
    check('step "huge" fails in a drill' in r.err and 'step "nap"' not in r.err, "sleeps do not wait", r)


def test_drill_scripted_answers_take_the_players_time(env):
    # answers[...].after: the players' thinking time passes on the drill clock
    # (1200x: 40 minutes is 2 real seconds), so objectives, timed injects and
    # escalation are exercised by an unattended drill too.
    pb = env.playbook('''
        step "iso" { phase = "containment", approval = "ic", run = function(ctx) return 1 end },
        step "pick" { phase = "containment", timeout = "30s",
                      run = function(ctx) return ctx.ask("Which site?", { "west", "east" }) end },
    ''', header='''phases = { "containment" }, objectives = { contain_within = "30m" },
                   escalation = { { notify = { "ops" } }, { after = "1h", notify = { "ops" } } },''')
    scn = scenario(env, '''
      speed = 1200,
      injects = { { at = "T+10m", text = "Ten minutes in." } },
      answers = { iso = { approval = "approve", after = "40m" }, pick = { ask = "east", after = "10m" } },
      expect = { status = "succeeded", escalations = { 1, 2 }, decisions = { iso = "approve", pick = "east" } },
    ''')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0, "every expectation held", r)
    check("(the players take 40m00s)" in r.out or "(the players take 40m)" in r.out, "the thinking time is shown", r)
    recs = env.journal()
    inj = [x for x in recs if x["type"] == "inject.shown"]
    check(len(inj) == 1 and 600000 <= inj[0]["data"]["sim_ms"] < 2400000, "the timed inject came while they thought", inj)
    esc = [x["data"] for x in recs if x["type"] == "escalation.triggered"]
    check(any("contain_within" in e["reason"] for e in esc), "the objective breached and escalated: %r" % esc)
    card = env.record("drill.scorecard")["data"]
    obj = card["objectives"][0]
    check(obj["objective"] == "contain_within" and obj["verdict"] == "breached", "breached on the scorecard", card)
    check(card["phases"][0]["duration_ms"] >= 50 * 60000, "the phase took the players' time", card)
    check(env.record("step.succeeded", "pick")["data"]["result"] == "east", "the step's deadline waited for them")
    bad = scenario(env, 'answers = { iso = { approval = "approve", after = "soon" } },', name="bad.lua")
    r = env.drill(pb, "--scenario", bad)
    check(r.code == 65 and "bad.lua:2: answers[\"iso\"].after must be a duration" in r.err, "a bad after", r)


def test_drill_signal_during_the_players_time_stops_without_answering(env):
    # A SIGTERM while a scripted answer's `after` passes must stop the drill
    # (exit 75, resumable), not cut the wait short and give the answer: for a
    # manual step, an approval and ctx.ask alike.
    import signal
    import subprocess
    import time
    from harness import IRP
    pb = env.playbook('''
        step "m" { manual = "Call the ISP" },
        step "gate" { approval = "ic", run = function(ctx) return 1 end },
        step "q" { run = function(ctx) return ctx.ask("Which site?", { "east", "west" }) end },
    ''')
    slow = {"m": 'm = { manual = "done", after = "10h" }',
            "gate": 'gate = { approval = "approve", after = "10h" }',
            "q": 'q = { ask = "west", after = "10h" }'}
    quick = {"m": 'm = "done"', "gate": 'gate = "approve"'}
    for n, step in enumerate(("m", "gate", "q")):
        run = "sig%d" % n
        # The steps before this one are answered at once; this one takes the players 10 hours.
        answers = [quick[s] for s in ("m", "gate")[:n]] + [slow[step]]
        scn = scenario(env, "speed = 60,\n  answers = { %s }," % ", ".join(answers), name="sig%d.lua" % n)
        p = subprocess.Popen([IRP, "drill", pb, "--scenario", scn, "--state-dir", env.state, "--run-id", run, "--yes"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env.env, cwd=env.dir)
        time.sleep(1.5 * SLACK)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        check(p.returncode == 75, "%s: SIGTERM while the players think: exit 75\n%s%s" % (step, out[-600:], err))
        recs = env.journal(run)
        stopped = [x["data"].get("step") for x in recs if x["type"] == "run.interrupted"]
        check(stopped == [step], "%s: journaled as interrupted at the step: %r" % (step, stopped))
        answered = [x["type"] for x in recs if x.get("step") == step and x["type"] in (
            "manual.answered", "approval.granted", "operator.answered", "step.succeeded")]
        check(answered == [], "%s: the scripted answer was not given early (nor --yes): %r" % (step, answered))


def test_drill_resume_carries_the_players_time_already_spent(env):
    # A drill stopped while the players thought about a scripted answer
    # (answers[step].after) and then resumed waits only the rest of that
    # time: the prompt's opening sim_ms is on the record (step.started of
    # a manual step, approval.requested), so the answer comes `after` after
    # the prompt opened on the drill clock, not `after` after the resume.
    import signal
    import subprocess
    import time
    from harness import IRP
    pb = env.playbook('''
        step "m" { manual = "Call the ISP" },
        step "gate" { approval = "ic", run = function(ctx) return 1 end },
    ''')
    cases = (("m", "step.started", "manual.answered", 'm = { manual = "done", after = "4m" }, gate = "approve"'),
             ("gate", "approval.requested", "approval.granted",
              'm = "done", gate = { approval = "approve", after = "4m" }'))
    for n, (step, opened, answered, answers) in enumerate(cases):
        run = "carry%d" % n
        scn = scenario(env, "speed = 60,\n  answers = { %s }," % answers, name="carry%d.lua" % n)
        p = subprocess.Popen([IRP, "drill", pb, "--scenario", scn, "--state-dir", env.state, "--run-id", run],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env.env, cwd=env.dir)
        time.sleep(1.5)  # 90 s of the players' 4 minutes, on the 60x drill clock
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        check(p.returncode == 75, "%s: stopped while the players think\n%s%s" % (step, out[-600:], err))
        stopped = env.journal(run)[-1]["data"]["sim_ms"]
        r = env.irp("resume", run, "--state-dir", env.state)
        check(r.code == 0, "%s: resumed" % step, r)
        check("of it passed before the drill stopped)" in r.out, "%s: the time already spent is shown" % step, r)
        recs = env.journal(run)
        start = [x["data"]["sim_ms"] for x in recs if x["type"] == opened and x.get("step") == step][0]
        done = [x["data"]["sim_ms"] for x in recs if x["type"] == answered and x.get("step") == step][0]
        check(stopped - start >= 45000, "%s: a good part of the wait passed before the stop: %d ms" % (step, stopped - start))
        check(240000 <= done - start < 285000,
              "%s: answered 4 drill minutes after the prompt opened, not 4 after the resume: %d ms" % (step, done - start))


def test_drill_escalations_come_due_at_a_resume_question_and_on_a_fast_clock(env):
    # Timed tiers and objectives are checked on a timer tick. That timer runs
    # while a resumed run asks about its in-flight step (here 2.5 drill
    # seconds pass at that question: tier 2, after = 1500ms, and the 2 s
    # objective come due), and a drill whose fast clock passes a tier's time
    # between two ticks as it ends gets one more check before run.finished.
    # The scorecard's list of escalations due but not fired (worked out from
    # the playbook's own rules; unit test in test_scenario.c) is then empty.
    import signal
    import subprocess
    import time
    from harness import IRP
    pb = env.playbook('''
        step "slow" { timeout = "1h", run = function(ctx) ctx.sleep("3s") return 1 end },
        step "last" { run = function(ctx) return 2 end },
    ''', header='''objectives = { resolve_within = "2s" },
                   escalation = { { notify = { "ops" } }, { after = "1500ms", notify = { "ops" } },
                                  { after = "10h", notify = { "ops" } } },''')
    p = subprocess.Popen([IRP, "drill", pb, "--state-dir", env.state, "--run-id", "r1"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.env, cwd=env.dir)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    check(p.returncode == 75, "stopped while \"slow\" runs\n%s%s" % (out[-600:], err))
    card = env.record("drill.scorecard")["data"]
    check(card["escalations_due_not_fired"] == [], "nothing was due yet: %r" % card["escalations_due_not_fired"])
    p = subprocess.Popen([IRP, "resume", "r1", "--state-dir", env.state], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.env, cwd=env.dir)
    time.sleep(2.5)
    out, err = p.communicate("skip\n", timeout=30)
    check(p.returncode == 0, "resumed, in-flight step skipped\n%s%s" % (out[-800:], err))
    recs = env.journal()
    esc = [x for x in recs if x["type"] == "escalation.triggered"]
    card = [x["data"] for x in recs if x["type"] == "drill.scorecard"][-1]
    check(sorted(x["data"]["tier"] for x in esc) == [1, 2, 3], "tiers 2 and 3 fired during the question: %r" % esc)
    check(any(x["data"].get("objective") == "resolve_within" for x in esc), "the objective's breach escalated")
    check(card["escalations_due_not_fired"] == [], "nothing missed: %r" % card["escalations_due_not_fired"])
    # 2x: the timer checks every 250 ms of the drill clock, the sleep is 3 s.
    r = env.irp("drill", pb, "--state-dir", env.state, "--run-id", "r2", "--speed", "2")
    card = env.record("drill.scorecard", run="r2")["data"]
    check(r.code == 0 and card["escalations"] == [1, 2, 3] and card["escalations_due_not_fired"] == [],
          "every due tier fired at 2x: %r" % card, r)
    # 7200x: the whole drill takes a few real milliseconds, less than the
    # shortest tick (10 ms). The check as the drill ends fires tier 2 (its
    # time passed with the run open); the objective's phase (the run) has
    # finished by then, so its breach pages nobody, and the scorecard says so.
    r = env.irp("drill", pb, "--state-dir", env.state, "--run-id", "r3", "--speed", "7200")
    card = env.record("drill.scorecard", run="r3")["data"]
    due = [(d["rule"], d.get("objective")) for d in card["escalations_due_not_fired"]]
    check(r.code == 0 and 2 in card["escalations"], "tier 2 fired at 7200x: %r" % card, r)
    # Under load a tick can come mid-run, after the objective's 2 s: then
    # the breach itself escalates (to tier 2) and nothing is missed.
    for_objective = [x for x in env.journal("r3") if x["type"] == "escalation.triggered"
                     and x["data"].get("objective") == "resolve_within"]
    if card["escalations"] == [1, 2] and not for_objective:
        check(due == [("objective", "resolve_within")], "the unescalated breach is reported: %r" % due)
        check("breached with no escalation following" in r.out, "and printed", r)
    elif for_objective:
        check(due == [], "the breach escalated, nothing is missed: %r" % due)


def test_finished_drill_is_finished_for_status_and_resume(env):
    # The drill.scorecard comes after run.finished: the run is finished all the same.
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },\nstep "m" { manual = "Call" },')
    scn = scenario(env, 'answers = { m = "done" }, expect = { status = "succeeded" },')
    r = env.drill(pb, "--scenario", scn)
    check(r.code == 0 and env.journal()[-1]["type"] == "drill.scorecard", "the drill ends with its scorecard", r)
    s = env.irp("status", "r1", "--state-dir", env.state)
    check(s.code == 0 and "run r1 (drill): succeeded" in s.out and "irp resume" not in s.out,
          "status says succeeded, not stopped", s)
    s = env.irp("status", "--state-dir", env.state)
    check("succeeded" in s.out and "stopped" not in s.out, "and so does the list", s)
    n = len(env.journal())
    s = env.irp("resume", "r1", "--state-dir", env.state)
    check(s.code == 64 and "already finished (succeeded)" in s.err, "nothing to resume", s)
    check(len(env.journal()) == n, "resume wrote nothing")
