"""End-to-end tests of the command line: help, usage errors, list, show,
verify, version."""
import os
from harness import check


def test_help_for_every_command(env):
    for cmd in ["run", "drill", "check", "list", "show", "verify", "version"]:
        r = env.irp(cmd, "--help")
        check(r.code == 0 and "usage: irp " + cmd in r.out, "help of " + cmd, r)
    r = env.irp("--help")
    check(r.code == 0 and "irp run" in r.out, "general help", r)


def test_usage_errors_exit_64(env):
    for args in [["run"], ["run", "x.lua", "--bogus"], ["run", "x.lua", "-v", "novalue"],
                 ["frobnicate"], ["run", "x.lua", "--memory", "lots"], ["drill", "x.lua", "--speed", "0"],
                 ["drill", "x.lua", "--speed", "nan"], ["drill", "x.lua", "--speed", ""]]:
        r = env.irp(*args)
        check(r.code == 64, "exit 64 for %r" % args, r)
        check(r.err.strip(), "an error message for %r" % args, r)
    # An option given last, without its value, is named without "(null)".
    for args in [["run", "x.lua", "--memory"], ["run", "x.lua", "--config"], ["drill", "x.lua", "--speed"]]:
        r = env.irp(*args)
        check(r.code == 64 and args[-1] in r.err and "(null)" not in r.err, "missing value of %r" % args, r)


def test_version(env):
    r = env.irp("version")
    check(r.code == 0 and r.out.startswith("irp "), "version", r)


def test_list_and_show(env):
    env.write("pbs/a.lua", 'return playbook { id = "alpha", title = "Alpha", severity = "high", steps = { step "s" { manual = "x" } } }\n')
    env.write("pbs/b.lua", 'return 42\n')
    r = env.irp("list", os.path.join(env.dir, "pbs"))
    check("alpha" in r.out and "high" in r.out, "listed", r)
    check("(invalid)" in r.out, "invalid one flagged", r)
    r = env.irp("show", os.path.join(env.dir, "pbs/a.lua"))
    check(r.code == 0 and "Alpha" in r.out and "manual" in r.out, "show", r)


def test_verify_intact_and_tampered(env):
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },\nstep "b" { run = function(ctx) return 2 end },')
    r = env.run(pb)
    check(r.code == 0, "run", r)
    r = env.irp("verify", "r1", "--state-dir", env.state)
    check(r.code == 0 and "intact" in r.out, "intact", r)
    path = env.journal_path()
    lines = open(path).read().splitlines(True)
    lines[2] = lines[2].replace('"step.', '"stop.', 1)
    open(path, "w").write("".join(lines))
    r = env.irp("verify", path)
    check(r.code == 65, "tampering detected", r)


def test_run_id_reuse_refused(env):
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },')
    check(env.run(pb).code == 0, "first run")
    r = env.run(pb)
    check(r.code == 64 and "already exists" in r.err, "second run with the same id refused", r)


def test_list_of_a_missing_directory_names_it(env):
    missing = os.path.join(env.dir, "nonexistent")
    r = env.irp("list", missing)
    check(r.code == 65 and r.err.strip() == "irp list: %s: No such file or directory" % missing,
          "the path and the cause", r)
    f = env.write("file.lua", "return 1\n")
    r = env.irp("list", f)
    check(r.code == 65 and r.err.strip() == "irp list: %s: Not a directory" % f, "a file is not a directory", r)


def test_a_run_id_never_starts_with_a_dash(env):
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },')
    r = env.irp("run", pb, "--state-dir", env.state, "--run-id", "-x")
    check(r.code == 64 and "-x" in r.err, "refused as a usage error: status, log and resume would read it as an option", r)
