"""End-to-end tests of playbook validation: every problem is reported as
file:line: message with exit 65 before anything runs."""
import os
from harness import check


def bad(env, text, *expect, name="bad.lua", args=("check",)):
    path = env.write(name, text)
    if args == ("check",):
        r = env.irp("check", path)
    else:
        r = env.irp(*args[:1], path, "--state-dir", env.state, *args[1:])
    check(r.code == 65, "exit 65 for a bad playbook", r)
    for e in expect:
        check(e in r.err, "stderr should contain %r" % e, r)
    check(not os.path.exists(os.path.join(env.state, "runs")), "nothing ran: no run directory", r)
    return r


def test_syntax_error_names_line(env):
    bad(env, 'return playbook {\n  id = "x", title = "X",\n  steps = { step "a" { run = function(ctx) return 1 end },,\n}\n',
        "bad.lua:3:")


def test_not_returning_a_playbook(env):
    bad(env, 'local x = 1\n', "bad.lua:1:", "playbook")


def test_unknown_field_suggests(env):
    bad(env, 'return playbook {\n  id = "x", title = "X", serverity = "high",\n  steps = {\n    step "a" { retires = 3, run = function(ctx) end },\n  },\n}\n',
        "bad.lua:2: unknown field 'serverity'", "severity", "bad.lua:4:", "retires", "retries")


def test_wrong_types_duplicates_and_jumps(env):
    r = bad(env, '''return playbook {
  id = "x", title = "X", phases = { "detection", "containment" },
  steps = {
    step "a" { phase = "detection", retries = "three", run = function(ctx) end },
    step "a" { phase = "containment", run = function(ctx) end },
    step "b" { phase = "containement", run = function(ctx) end },
    step "c" { phase = "containment", on_failure = "restor", run = function(ctx) end },
    step "d" { phase = "containment", run = function(ctx) end, manual = "both" },
    step "e" { phase = "containment", timeout = "soon", run = function(ctx) end },
  },
}
''', "bad.lua:4:", "retries", "bad.lua:5:", "duplicate", "bad.lua:6:", "containment",
        "bad.lua:7:", "restor", "bad.lua:8:", "bad.lua:9:", "timeout")


def test_phases_out_of_order(env):
    bad(env, '''return playbook {
  id = "x", title = "X", phases = { "detection", "containment" },
  steps = {
    step "a" { phase = "containment", run = function(ctx) end },
    step "b" { phase = "detection", run = function(ctx) end },
  },
}
''', "bad.lua:5:")


def test_missing_required_input_at_run(env):
    text = '''return playbook {
  id = "x", title = "X", inputs = { host = { required = true } },
  steps = { step "a" { title = "Isolate {{host}}", run = function(ctx) end } },
}
'''
    path = env.write("pb.lua", text)
    r = env.irp("check", path)
    check(r.code == 0, "check does not need inputs", r)
    check(r.out == "ok  %s: x, 1 step\n" % path, "one step, singular", r)
    bad(env, text, "host", name="pb.lua", args=("run",))
    bad(env, text, "hots", name="pb.lua", args=("run", "-v", "hots=web-07"))


def test_unknown_template_variable(env):
    bad(env, '''return playbook {
  id = "x", title = "X", inputs = { host = {} },
  steps = { step "a" { title = "Isolate {{hots}}", run = function(ctx) end } },
}
''', "bad.lua:3:", "hots", "host")


def test_top_level_endless_loop(env):
    r = bad(env, 'while true do end\nreturn playbook { id = "x", title = "X", steps = {} }\n', "bad.lua:1:")
    check(r.elapsed < 10, "stopped in time", r)


def test_top_level_stuck_in_c(env):
    r = bad(env, 'string.find(string.rep("a", 40000), ".-.-.-.-.-b")\nreturn playbook { id = "x", title = "X", steps = {} }\n', "bad.lua")
    check(r.elapsed < 12, "killed in time", r)


def test_top_level_sandbox(env):
    bad(env, 'os.exit(0)\n', "bad.lua:1:")
    bad(env, 'io.open("/etc/passwd")\n', "bad.lua:1:")


def test_shipped_playbooks_check(env):
    here = os.path.dirname(os.path.abspath(__file__))
    pbs = os.path.join(here, "..", "..", "playbooks")
    files = sorted(os.path.join(pbs, f) for f in os.listdir(pbs) if f.endswith(".lua"))
    check(len(files) >= 3, "three playbooks shipped")
    r = env.irp("check", *files)
    check(r.code == 0, "every shipped playbook passes check", r)
