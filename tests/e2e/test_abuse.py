"""Abuse tests: every limit of the sandbox and the supervisor. Each hostile
step must fail with a reason naming the cause, within its timeout plus one
second, while the runner and the journal carry on (the next step runs)."""
import os
import signal
import subprocess
import time
from harness import canary as make_canary, check, no_process_with, SLACK, IRP


def hostile(env, body, timeout="1s", extra_steps=""):
    """A playbook whose first step is hostile and whose second must still run."""
    return env.playbook('''
        step "evil" { timeout = "%s", on_failure = "continue",
          run = function(ctx)
%s
          end },
        step "after" { run = function(ctx) return { evil = ctx.steps.evil.status } end },
%s
    ''' % (timeout, body, extra_steps))


def assert_contained(env, r, reason_has, max_seconds=None, kind=None):
    check(r.code == 0, "the run goes on after the hostile step", r)
    failed = env.record("step.failed", "evil")["data"]
    check(any(s.lower() in failed["reason"].lower() for s in reason_has),
          "reason %r should mention one of %r" % (failed["reason"], reason_has), r)
    if kind:
        check(failed.get("kind") == kind, "kind %r, expected %r" % (failed.get("kind"), kind))
    check(env.record("step.succeeded", "after")["data"]["result"] == {"evil": "failed"}, "next step ran")
    if max_seconds is not None:
        check(failed["duration_ms"] <= max_seconds * 1000 * SLACK,
              "ended in %d ms, limit %.1f s" % (failed["duration_ms"], max_seconds))
    env.journal()  # every line valid JSON


def test_endless_loop(env):
    r = env.run(hostile(env, "while true do end"))
    assert_contained(env, r, ["timed out"], 2.0, "timeout")


def test_endless_loop_under_pcall(env):
    r = env.run(hostile(env, "while true do pcall(function() while true do end end) end"))
    assert_contained(env, r, ["timed out"], 2.0, "timeout")


def test_endless_loop_under_xpcall_with_looping_handler(env):
    r = env.run(hostile(env, '''
        while true do xpcall(function() while true do end end, function(e) while true do end end) end'''))
    assert_contained(env, r, ["timed out"], 2.0)


def test_endless_loop_in_coroutine(env):
    r = env.run(hostile(env, '''
        local co = coroutine.create(function() while true do end end)
        while true do coroutine.resume(co) end'''))
    assert_contained(env, r, ["timed out"], 2.0)


def test_endless_loop_in_coroutine_wrap_swallowing(env):
    r = env.run(hostile(env, '''
        while true do
          local f = coroutine.wrap(function() while true do pcall(function() while true do end end) end end)
          pcall(f)
        end'''))
    assert_contained(env, r, ["timed out"], 2.0)


def test_memory_bomb(env):
    r = env.run(hostile(env, "local t = {} for i = 1, 1e12 do t[i] = string.rep('x', 1000) .. i end",
                        timeout="30s"), "--memory", "64M")
    assert_contained(env, r, ["memory"], None, "memory")


def test_string_rep_terabyte(env):
    r = env.run(hostile(env, 'local s = string.rep("x", 1 << 40) return #s'))
    assert_contained(env, r, ["memory", "too large"])


def test_unbounded_recursion(env):
    r = env.run(hostile(env, "local function f(n) return 1 + f(n + 1) end return f(1)", timeout="10s"))
    assert_contained(env, r, ["stack overflow", "memory"])


def test_error_objects_that_are_not_strings(env):
    for body, expect in [
        ("error({ code = 42 })", "table"),
        ("error(nil)", "nil"),
        ("error(setmetatable({}, { __tostring = function() return 'custom message' end }))", "custom message"),
        ("error(setmetatable({}, { __tostring = function() error('tostring bomb') end }))", "table"),
        ("error(setmetatable({}, { __tostring = function() while true do end end }))", "time"),
    ]:
        env.close()
        env.__init__()
        r = env.run(hostile(env, body))
        assert_contained(env, r, [expect])


def test_binary_chunk_refused(env):
    r = env.run(hostile(env, '''
        local f = load(string.char(27) .. "LuaT" .. string.rep("\\0", 40))
        if f then f() end
        error("binary chunk loaded: " .. tostring(f))'''))
    check(r.code == 0, "run goes on", r)
    reason = env.record("step.failed", "evil")["data"]["reason"]
    check("binary chunk loaded: nil" in reason, "load returned nil for a binary chunk: %s" % reason)


def test_string_dump_is_gone(env):
    r = env.run(hostile(env, 'return ("").dump(function() end)'))
    assert_contained(env, r, ["dump"])


def test_os_exit_cannot_fake_success(env):
    r = env.run(hostile(env, "os.exit(0)"))
    assert_contained(env, r, ["exit"])


def test_io_open_and_os_execute_absent(env):
    r = env.run(hostile(env, 'io.open("/etc/passwd")'))
    assert_contained(env, r, ["io"])
    env.close(); env.__init__()
    r = env.run(hostile(env, 'os.execute("touch /tmp/irp-pwned")'))
    assert_contained(env, r, ["execute"])
    check(not os.path.exists("/tmp/irp-pwned"), "os.execute ran")


def test_pattern_search_inside_c_is_killed(env):
    r = env.run(hostile(env, 'return string.find(string.rep("a", 40000), ".-.-.-.-.-b")'))
    assert_contained(env, r, ["timed out", "killed"], 2.0, "timeout")


def test_when_stuck_inside_c_is_killed_within_its_5s(env):
    pb = env.playbook('''
        step "evil" { on_failure = "continue", run = function(ctx) end,
          when = function(ctx) return string.find(string.rep("a", 40000), ".-.-.-.-.-b") end },
        step "after" { run = function(ctx) return { evil = ctx.steps.evil.status } end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "the run goes on", r)
    failed = env.record("step.failed", "evil")["data"]
    check("when condition" in failed["reason"] and "killed" in failed["reason"],
          "the reason names the when condition and the kill: %r" % failed["reason"])
    check(5000 <= failed["duration_ms"] <= 6000 * SLACK, "ended %d ms after it began" % failed["duration_ms"])
    check(env.record("step.succeeded", "after")["data"]["result"] == {"evil": "failed"}, "next step ran")


def test_top_level_stuck_inside_c_is_killed_within_its_5s(env):
    stuck = 'local found = string.find(string.rep("a", 40000), ".-.-.-.-.-b")\n'
    pb = env.write("pb.lua", stuck + 'return playbook { id = "t", title = "T", steps = {\n'
                   '  step "a" { run = function(ctx) ctx.log("RAN") end } } }\n')
    r = env.run(pb)
    check(r.code == 65, "a playbook that cannot load is bad input", r)
    check(pb + ":1: the playbook's top-level code did not finish within 5s (stuck inside a C function"
          in r.err, "the message names the file, line 1 and the 5 s", r)
    check(5.0 <= r.elapsed <= 6.5 * SLACK, "killed at 5 s + 0.5 s, not later", r)
    check("RAN" not in r.out and not os.path.exists(env.journal_path()), "nothing ran", r)
    # an attach file stuck the same way is named as the attach file
    ok = env.playbook('step "a" { run = function(ctx) ctx.log("RAN") end },', name="ok.lua")
    att = env.write("att.lua", stuck + 'return attach { after = "a", step "b" { manual = "x" } }\n')
    r = env.irp("check", ok, "--attach", att)
    check(r.code == 65 and att + ":1: the attach file's top-level code did not finish within 5s" in r.err,
          "the attach file is named", r)
    check(r.elapsed <= 6.5 * SLACK, "killed at 5 s + 0.5 s", r)


def test_thirty_megabyte_log_message(env):
    r = env.run(hostile(env, 'ctx.log(string.rep("y", 30 * 1024 * 1024)) error("logged")', timeout="20s"))
    assert_contained(env, r, ["logged"])
    logs = [x for x in env.journal() if x["type"] == "step.log"]
    check(logs and logs[0]["data"].get("truncated") is True, "log truncated flag")
    check(len(logs[0]["data"]["msg"]) <= 70000, "log bounded: %d" % len(logs[0]["data"]["msg"]))
    check(os.path.getsize(env.journal_path()) < 1 << 20, "journal stays small")


def test_results_with_function_cycle_nan(env):
    for body, expect in [
        ("return { cb = function() end }", "function"),
        ("local t = {} t.self = t return t", "cycle"),
        ("return { x = 0/0 }", "nan"),
        ("return { x = math.huge }", "inf"),
    ]:
        env.close()
        env.__init__()
        r = env.run(hostile(env, body))
        assert_contained(env, r, [expect])
        check(env.record("step.failed", "evil")["data"]["kind"] == "result", "kind result")


def test_exec_timeout_leaves_no_process(env):
    marker = "irp-e2e-marker-%d" % os.getpid()
    escaped = "irp-e2e-escaped-%d" % os.getpid()
    r = env.run(hostile(env, 'ctx.exec{ "sh", "-c", "setsid sh -c \'sleep 302; echo %s\' & '
                             'sleep 300 & sleep 301; echo %s" }' % (escaped, marker), timeout="1s"))
    assert_contained(env, r, ["timed out", "time"], 2.5)
    time.sleep(0.2)
    check(no_process_with(marker) and no_process_with("sleep 301"), "children were killed")
    check(no_process_with(escaped), "a child that left the process group (setsid) was killed too")


def test_exec_ignoring_sigterm_is_killed_at_the_hard_deadline(env):
    marker = "irp-e2e-noterm-%d" % os.getpid()
    r = env.run(hostile(env, 'ctx.exec{ "sh", "-c", "trap \'\' TERM; while :; do :; done; echo %s" }' % marker,
                        timeout="1s"))
    assert_contained(env, r, ["ctx.exec"], 2.0, "timeout")
    reason = env.record("step.failed", "evil")["data"]["reason"]
    check("C function" not in reason, "the command held the step, not C code: %r" % reason)
    time.sleep(0.2)
    check(no_process_with(marker), "the command was killed")


def test_worker_crash_fails_step_not_run(env):
    # Exhaust the C stack through a metamethod chain inside C: a real crash
    # is hard to provoke from Lua, so this kills the worker from outside.
    r = env.run(hostile(env, '''
        ctx.exec{ "sh", "-c", "pkill -9 -P $PPID -f __worker; sleep 2", check = false }
        while true do end'''))
    check(r.code == 0, "run survives the worker's death", r)
    failed = env.record("step.failed", "evil")["data"]
    check(failed["kind"] == "crash" and "signal 9" in failed["reason"],
          "the reason names how the worker died: %r" % failed, r)
    check(env.record("step.succeeded", "after"), "a fresh worker ran the next step")


def test_signal_during_a_long_ctx_sleep_ends_irp_at_once(env):
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 75)):
        run_id = "s%d" % code
        pb = hostile(env, 'ctx.sleep("1h")', timeout="2h")
        p = subprocess.Popen([IRP, "run", pb, "--state-dir", env.state, "--run-id", run_id], cwd=env.dir,
                             env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0 * SLACK)
        t0 = time.monotonic()
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=10 * SLACK)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("irp waited out the step's 1 h sleep after %s" % sig.name)
        check(p.returncode == code, "%s exits %d, got %s\n%s\n%s" % (sig.name, code, p.returncode, out, err))
        check(time.monotonic() - t0 < 5 * SLACK, "ended promptly after %s" % sig.name)
        check(env.events(run_id)[-1] == "run.interrupted", "run.interrupted recorded: %r" % env.events(run_id))


def test_sigint_interrupts_and_records(env):
    pb = hostile(env, 'ctx.exec{ "sleep", "30" }', timeout="60s")
    p = subprocess.Popen([IRP, "run", pb, "--state-dir", env.state,
                          "--run-id", "r1"], cwd=env.dir, env=env.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.0 * SLACK)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    check(p.returncode == 130, "SIGINT exits 130, got %s\n%s\n%s" % (p.returncode, out, err))
    check(env.events()[-1] == "run.interrupted", "run.interrupted recorded: %r" % env.events())
    check(no_process_with("sleep 30"), "the step's child was stopped")


def test_secret_never_leaks(env):
    canary = make_canary("token")
    pb = env.playbook('''
        step "use" { run = function(ctx)
            local s = ctx.secret("IRP_TEST_TOKEN")
            local r = ctx.exec{ "echo", s }
            ctx.log("handle is " .. tostring(s))
            return { out = r.stdout, shown = tostring(s) }
          end },
        step "concat" { on_failure = "continue", run = function(ctx) return "x" .. ctx.secret("IRP_TEST_TOKEN") end },
        step "fail" { on_failure = "continue", run = function(ctx) error(ctx.secret("IRP_TEST_TOKEN")) end },
    ''')
    r = env.run(pb, env={"IRP_TEST_TOKEN": canary})
    check(r.code == 0, "ok", r)
    check(canary not in r.out and canary not in r.err, "secret on screen", r)
    with open(env.journal_path()) as f:
        check(canary not in f.read(), "secret in the journal")
    res = env.record("step.succeeded", "use")["data"]["result"]
    check(res["shown"] == "<secret IRP_TEST_TOKEN>", "tostring of a handle: %r" % res)
    check("[secret IRP_TEST_TOKEN]" in res["out"], "exec output redacted: %r" % res)
    for root, _, files in os.walk(env.dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                check(canary.encode() not in f.read(), "secret on disk in %s" % name)


def test_secret_as_exec_stdin(env):
    """A secret handle given as stdin reaches the program (the safe way to hand it a password)
    and nothing else: not the journal, the screen, the worker or the reply's record."""
    canary = make_canary("stdin")
    outdir = env.write("out/.keep", "")
    got = os.path.join(os.path.dirname(outdir), "got.txt")
    pb = env.playbook('''
        step "feed" { run = function(ctx)
            local s = ctx.secret("IRP_TEST_PASSWORD")
            ctx.exec{ "sh", "-c", 'cat > "$1"', "sh", "%s", stdin = s }
            local r = ctx.exec{ "sh", "-c", 'read x; echo "got ${#x} chars"; echo "$x"', stdin = s }
            return { out = r.stdout, worker_saw = r.stdout:find("%s", 1, true) ~= nil }
          end },
        step "badtype" { on_failure = "continue", run = function(ctx) ctx.exec{ "cat", stdin = 5 } end },
        step "unset" { on_failure = "continue",
          run = function(ctx) ctx.exec{ "cat", stdin = ctx.secret("IRP_TEST_UNSET_PW") } end },
    ''' % (got, canary.rsplit("-", 1)[1]))
    r = env.run(pb, env={"IRP_TEST_PASSWORD": canary})
    check(r.code == 0, "the run succeeds", r)
    with open(got) as f:
        check(f.read() == canary, "the program received the secret's value on stdin")
    os.remove(got)
    res = env.record("step.succeeded", "feed")["data"]["result"]
    check(res["worker_saw"] is False, "the worker's reply has the value redacted")
    out = res["out"]
    check(out.startswith("got %d chars\n" % len(canary)), "read by the shell: %r" % out)
    check("[secret IRP_TEST_PASSWORD]" in out, "echoed back: redacted %r" % out)
    check("must be a string or a secret, not number" in env.record("step.failed", "badtype")["data"]["reason"],
          "another type is refused")
    check("IRP_TEST_UNSET_PW" in env.record("step.failed", "unset")["data"]["reason"],
          "an unset secret fails the step by name")
    check(canary not in r.out and canary not in r.err, "secret on screen", r)
    for root, _, files in os.walk(env.dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                check(canary.encode() not in f.read(), "secret on disk in %s" % name)
    # a drill accepts the handle and writes nothing
    r = env.drill(pb, "--run-id", "d1", env={"IRP_TEST_PASSWORD": canary})
    check(r.code == 0 and not os.path.exists(got), "a drill simulates it", r)


def test_huge_operator_lines_are_cut(env):
    """A pasted 48 MB line is cut at 4 KiB (on a character boundary), said so to the
    operator and journaled as truncated; irp never holds the whole line."""
    pb = env.playbook('''
        step "m1" { manual = "first" },
        step "m2" { manual = "second" },
        step "m3" { manual = "third" },
    ''')
    p = subprocess.Popen([IRP, "run", pb, "--state-dir", env.state, "--run-id", "r1"], cwd=env.dir,
                         env=env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    note = ("note: " + "x" + "é" * (24 << 20) + "\n").encode()
    p.stdin.write(note)
    p.stdin.write(("done: " + "ab" * 5000 + "\n").encode())
    p.stdin.flush()
    deadline = time.monotonic() + 30 * SLACK
    while time.monotonic() < deadline:
        if os.path.exists(env.journal_path()):
            with open(env.journal_path(), "rb") as f:
                if any(b'"step.started"' in l and b'"step":"m2"' in l for l in f.read().split(b"\n")):
                    break
        time.sleep(0.05)
    with open("/proc/%d/status" % p.pid) as f:
        peak_kb = int([l for l in f if l.startswith("VmHWM:")][0].split()[1])
    p.stdin.write(b"done\n")
    p.stdin.write(("note: " + "z" * 10000 + "\n").encode())  # input ends inside m3: a cut line at EOF too
    p.stdin.close()
    p.stdin = None
    out, err = p.communicate(timeout=30 * SLACK)
    check(p.returncode == 75, "the run stops as interrupted at m3: %s\n%s" % (p.returncode, err[-2000:]))
    check(peak_kb < 40 * 1024, "the supervisor peaked at %d KiB reading a 48 MB line" % peak_kb)
    check(len(out) < 64 * 1024, "the screen shows the cut lines only: %d bytes" % len(out))
    text = out.decode()
    check("only its first" in text and "at most 4 KiB" in text, "the operator is told", text[-3000:])
    rec = env.record("operator.note", "m1")["data"]
    check(rec.get("truncated") is True and rec["original_bytes"] == len(note) - 1 - len("note: ") + 6,
          "the note is journaled as truncated: %r" % {k: v for k, v in rec.items() if k != "note"})
    n = rec["note"].encode()
    check(len(n) <= 4096 and rec["note"].startswith("x") and set(rec["note"][1:]) == {"é"},
          "the note is cut on a character boundary: %d bytes, %r" % (len(n), rec["note"][-4:]))
    ans = env.record("manual.answered", "m1")["data"]
    check(ans.get("truncated") is True and len(ans["note"]) <= 4096 and ans["original_bytes"] == 10006,
          "the answer's note too: %r" % {k: v for k, v in ans.items() if k != "note"})
    check("truncated" not in env.record("manual.answered", "m2")["data"], "a short answer is whole")
    notes = [r for r in env.journal() if r["type"] == "operator.note" and r.get("step") == "m3"]
    check(notes and notes[0]["data"].get("truncated") is True, "a cut line at the end of input: %r" % notes)


def test_exec_with_many_arguments(env):
    # Every argument is pushed on the Lua stack: 30 once overflowed the 20
    # slots a C function is promised and crashed the worker after the command ran.
    pb = env.playbook('''
        step "many" { run = function(ctx)
            local a = { "echo" } for i = 1, 300 do a[#a + 1] = "x" .. i end
            return { out = ctx.exec(a).stdout } end },
        step "too-many" { on_failure = "continue", run = function(ctx)
            local a = { "echo" } for i = 1, 5000 do a[#a + 1] = "x" end
            ctx.exec(a) end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "run", r)
    out = env.record("step.succeeded", "many")["data"]["result"]["out"]
    check(out.split() == ["x%d" % i for i in range(1, 301)], "300 arguments reach the command: %r" % out[:200])
    check("at most 4096" in env.record("step.failed", "too-many")["data"]["reason"], "a bound, named")


def test_exec_refuses_nul_bytes_and_bad_env_names(env):
    # The kernel cuts argv, environment entries and paths at a NUL: "rm a\0b"
    # would run as "rm a" while the journal shows the whole argument. And an
    # env name with '=' sets another variable than the one named.
    pb = env.playbook('''
        step "arg" { on_failure = "continue", run = function(ctx) ctx.exec{ "touch", "keep\\0gone" } end },
        step "envval" { on_failure = "continue", run = function(ctx) ctx.exec{ "env", env = { X = "1\\0Y=2" } } end },
        step "envname" { on_failure = "continue", run = function(ctx) ctx.exec{ "env", env = { ["PATH=/tmp:x"] = "1" } } end },
        step "cwd" { on_failure = "continue", run = function(ctx) ctx.exec{ "pwd", cwd = "/tmp\\0/etc" } end },
        step "stdin" { run = function(ctx) return { n = #ctx.exec{ "cat", stdin = "a\\0b" }.stdout } end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "run", r)
    reason = lambda s: env.record("step.failed", s)["data"]["reason"]
    check("argument 2 contains a NUL byte" in reason("arg"), reason("arg"))
    check("env entry 'X' contains a NUL byte" in reason("envval"), reason("envval"))
    check("env name 'PATH=/tmp:x' is not a variable name" in reason("envname"), reason("envname"))
    check("option 'cwd' contains a NUL byte" in reason("cwd"), reason("cwd"))
    check(not any(x["type"] == "step.exec" and x["step"] != "stdin" for x in env.journal()), "nothing was run")
    check(not os.path.exists(os.path.join(env.dir, "keep")), "no file 'keep' was made")
    check(env.record("step.succeeded", "stdin")["data"]["result"]["n"] == 3, "stdin may hold a NUL byte")


def test_fifo_or_directory_given_as_a_file(env):
    # A FIFO with no writer once blocked the read until the 5 s load deadline
    # ("stuck inside a C function"); every file irp reads is refused at once.
    fifo = os.path.join(env.dir, "fifo.lua")
    os.mkfifo(fifo)
    try:
        fifo_inputs_refused(env, fifo)
    finally:
        os.unlink(fifo)  # the harness reads every file a test leaves


def fifo_inputs_refused(env, fifo):
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },')
    for args, what in ((["check", fifo], "cannot read"), (["run", fifo], "cannot read"),
                       (["drill", pb, "--scenario", fifo], "cannot read the scenario"),
                       (["run", pb, "--config", fifo], "cannot read the configuration"),
                       (["check", pb, "--attach", fifo], "cannot read"),
                       (["check", env.dir], "is a directory")):
        t = time.monotonic()
        r = env.irp(*args, "--state-dir", env.state) if args[0] != "check" else env.irp(*args)
        check(r.code == 65 and what in r.err and time.monotonic() - t < 3 * SLACK,
              "%s: refused at once, naming the problem" % " ".join(args), r)
        check(os.path.basename(fifo) in r.err or args == ["check", env.dir], "names the file", r)
    check(not os.path.exists(env.journal_path()), "nothing ran")


def test_oversized_input_files_are_refused(env):
    # Every file irp reads has a size limit: playbook 16 MiB, plugin 4 MiB,
    # configuration and scenario 1 MiB (a comment line keeps each valid Lua).
    def big(name, mib, body):
        path = os.path.join(env.dir, name)
        with open(path, "w") as f:
            f.write(body)
            f.write("-- " + "x" * (mib << 20) + "\n")
        return path
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },')
    huge_pb = big("huge.lua", 16, "return playbook { id = 't', title = 'T', steps = {} }\n")
    r = env.irp("check", huge_pb)
    check(r.code == 65 and "huge.lua" in r.err and "larger than 16 MiB" in r.err, "playbook over 16 MiB", r)
    os.makedirs(os.path.join(env.dir, "plugs"))
    big("plugs/fat.lua", 4, "return {}\n")
    user = env.write("user.lua", 'local fat = require "fat"\n'
                     'return playbook { id = "t", title = "T", steps = { step "a" { run = function() end } } }\n')
    r = env.irp("check", user, "--plugins", os.path.join(env.dir, "plugs"))
    check(r.code == 65 and "fat.lua is larger than 4 MiB" in r.err, "plugin over 4 MiB", r)
    conf = big("conf.lua", 1, "notifiers = {}\n")
    r = env.irp("run", pb, "--config", conf, "--state-dir", env.state)
    check(r.code == 65 and "conf.lua: larger than 1 MiB: not a configuration" in r.err, "configuration over 1 MiB", r)
    scn = big("scn.lua", 1, "return scenario { }\n")
    r = env.irp("drill", pb, "--scenario", scn, "--state-dir", env.state)
    check(r.code == 65 and "scn.lua: larger than 1 MiB: not a scenario" in r.err, "scenario over 1 MiB", r)
    check(not os.path.exists(env.journal_path()), "nothing ran")
    for name in ("huge.lua", "plugs/fat.lua", "conf.lua", "scn.lua"):
        os.unlink(os.path.join(env.dir, name))  # 22 MiB the canary sweep need not read


def test_messages_for_values_out_of_range(env):
    pb = env.playbook('''
        step "nil" { on_failure = "continue", run = function(ctx) error(nil) end },
        step "neg" { on_failure = "continue", run = function(ctx) ctx.sleep("-5s") end },
        step "huge" { on_failure = "continue", run = function(ctx) ctx.sleep(1e308) end },
    ''')
    r = env.run(pb)
    check(r.code == 0, "run", r)
    reason = lambda s: env.record("step.failed", s)["data"]["reason"]
    check(reason("nil").endswith("pb.lua:4: (error object is a nil value)"), reason("nil"))
    check('ctx.sleep: "-5s" is not a duration' in reason("neg"), reason("neg"))
    check("ctx.sleep: 1e+308 is not a number of seconds from 0 to 1e12" in reason("huge"), reason("huge"))
    bad = env.playbook('step "a" { timeout = 1e308, run = function(ctx) return 1 end },', name="bad.lua")
    r = env.irp("check", bad)
    check(r.code == 65 and "field 'timeout' of step \"a\" must be a number of seconds from 0 to 1e12" in r.err,
          "the range is named", r)
    r = env.irp("resume", "no-such-run", "--state-dir", env.state)
    check(r.code == 65 and "no run no-such-run in " in r.err and "journal.jsonl" not in r.err,
          "names no file that does not exist", r)


def test_closed_standard_streams(env):
    # cron, a service manager or `<&-` can start irp with fd 0, 1 or 2 closed.
    pb = env.playbook('''
        step "a" { run = function(ctx) return ctx.exec{ "true" }.code end },
        step "m" { manual = "x" },
    ''')
    for i, closed in enumerate(("<&-", ">&-", "2>&-", ">&- 2>&-")):
        run_id = "c%d" % i
        p = subprocess.run("exec \"$IRP_BIN\" run pb.lua --state-dir state --run-id %s --yes %s" % (run_id, closed),
                           shell=True, cwd=env.dir, env=dict(env.env, IRP_BIN=IRP), capture_output=True, timeout=30)
        check(p.returncode == 0, "closed %s: exit %s %r" % (closed, p.returncode, p.stderr[-500:]))
        check(env.events(run_id)[-1] == "run.finished", "closed %s: the run finished" % closed)
    p = subprocess.run("exec \"$IRP_BIN\" run pb.lua --state-dir state --run-id c9 <&-", shell=True, cwd=env.dir,
                       env=dict(env.env, IRP_BIN=IRP), capture_output=True, timeout=30)
    check(p.returncode == 75, "no stdin at a manual step: no answer, resumable (exit %s)" % p.returncode)


def test_terminal_escapes_from_hosts_and_values_are_shown_not_emitted(env):
    # A compromised host's output, a -v value and a step's reason carry ESC,
    # BEL, CSI, OSC and C1 sequences: irp run, irp log and irp status show
    # them (^[, ^G, \u009b) instead of letting them retitle, clear or rewrite
    # the operator's screen, prompts included; the journal keeps the bytes.
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hirp: all clear\u009b2J"
    pb = env.playbook('''
        step "look" { title = "Look at {{h}}",
          run = function(ctx)
            local r = ctx.exec{ "printf", "\\27]0;pwned\\7\\27[2J\\27[1;1Hirp: all clear\\194\\1552J" }
            ctx.log(r.stdout)
            ctx.log("host " .. ctx.vars.h)
            return { out = r.stdout }
          end },
        step "check" { title = "Check {{h}}", manual = "Look at {{h}} by hand." },
        step "bad" { on_failure = "continue", run = function(ctx) error(ctx.steps.look.result.out) end },
    ''', header='inputs = { h = { required = true } }')
    r = env.run(pb, "-v", "h=\x1b[31mX\x07", stdin="done: checked\n")
    check(r.code in (0, 1), "the run ends", r)
    log = env.irp("log", "r1", "--state-dir", env.state)
    status = env.irp("status", "r1", "--state-dir", env.state)
    for name, res in (("run", r), ("log", log), ("status", status)):
        check(res.code in (0, 1), "irp %s ends" % name, res)
        for stream in (res.out, res.err):
            check("\x1b" not in stream and "\x07" not in stream and "\x9b" not in stream,
                  "no raw ESC, BEL or C1 in irp %s's output" % name, res)
    check("^[]0;pwned^G^[[2J" in r.out and "^[[31mX^G" in r.out and "\\u009b2J" in r.out,
          "irp run shows the sequences", r)
    check("^[]0;pwned^G^[[2J" in log.out and "^[[31mX^G" in log.out, "irp log shows them", log)
    check("^[]0;pwned^G^[[2J" in status.out, "irp status shows them in a step's reason", status)
    check("Check ^[[31mX^G" in r.out, "the prompt's step title shows them", r)
    check(any(rec.get("data", {}).get("msg") == evil for rec in env.journal() if rec["type"] == "step.log"),
          "the journal keeps the exact text")
    check(any(rec.get("data", {}).get("msg") == "host \x1b[31mX\x07" for rec in env.journal()
              if rec["type"] == "step.log"), "the journal keeps the -v value's exact text")
    json_log = env.irp("log", "r1", "--json", "--state-dir", env.state)
    check("\x1b" not in json_log.out and "\x07" not in json_log.out and "\\u001b" in json_log.out.lower(),
          "irp log --json escapes C0 control characters (JSON's own escaping)", json_log)


def test_commands_do_not_inherit_secret_values(env):
    # Redaction catches a secret's exact text; a command that reads it from
    # the environment could print it reversed or encoded. So the variables of
    # every secret irp knows of are not passed down, unless a step passes one.
    hook, token = make_canary("hook"), make_canary("token")
    conf = env.write("irp.conf.lua", 'notifiers = { soc = { type = "webhook", url = "http://127.0.0.1:9/h", '
                     'signing_secret = secret "IRP_TEST_HOOK" } }\n')
    pb = env.playbook('''
        step "use" { run = function(ctx) ctx.exec{ "true", ctx.secret("IRP_TEST_TOKEN") } end },
        step "peek" { run = function(ctx)
            local r = ctx.exec{ "sh", "-c", 'printf "%s|%s|%s|%s" "$IRP_TEST_HOOK" "$IRP_TEST_TOKEN" "$IRP_TEST_TOKEN_FILE" "$IRP_TEST_PLAIN" | rev' }
            local p = ctx.exec{ "sh", "-c", 'printf %s "$IRP_TEST_TOKEN" | wc -c', env = { IRP_TEST_TOKEN = ctx.secret("IRP_TEST_TOKEN") } }
            return { seen = r.stdout, passed = tonumber(p.stdout) } end },
    ''')
    r = env.run(pb, "--config", conf, env={"IRP_TEST_HOOK": hook, "IRP_TEST_TOKEN": token,
                                           "IRP_TEST_TOKEN_FILE": "/nonexistent", "IRP_TEST_PLAIN": "plain"})
    check(r.code == 0, "run", r)
    res = env.record("step.succeeded", "peek")["data"]["result"]
    check(res["seen"] == "nialp|||", "the secrets' variables are not inherited, the rest is: %r" % res)
    check(res["passed"] == len(token), "a secret passed in env = { ... } reaches the command")
    with open(env.journal_path()) as f:
        text = f.read()
    check(hook[::-1] not in text and token[::-1] not in text and token[::-1] not in r.out, "no reversed value")
