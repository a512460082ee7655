"""harness.py - helpers for irp's end-to-end tests: run the real binary on
small inline playbooks in a temporary directory, read its journal, and
collect results. Tests are plain functions named test_*; each gets a fresh
Env. The runner prints 'N passed, N failed' at the end."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

IRP = os.environ.get("IRP") or os.path.join(os.path.dirname(__file__), "..", "..", "irp")
SANITIZED = os.environ.get("IRP_SANITIZED") == "1"
# Sanitizers slow everything down; timing bounds stretch with them.
SLACK = 3.0 if SANITIZED else 1.0

# Every secret value a test hands irp contains CANARY_MARK (harness.canary()
# makes them). After each test that passed, the harness looks for the mark in
# every output of irp the test collected and in every file left in the test's
# directory (state, journal, outbox, artifacts): a secret must reach none.
CANARY_MARK = "irpcanary"
SWEEP = {"outputs": 0, "files": 0}


def canary(label):
    """A secret value for a test: unique, and found by the suite's sweep."""
    import secrets
    return "%s-%s-%s" % (CANARY_MARK, label, secrets.token_hex(6))


class Result:
    def __init__(self, code, out, err, elapsed):
        self.code, self.out, self.err, self.elapsed = code, out, err, elapsed

    def __repr__(self):
        return "exit %s after %.2fs\n--- stdout\n%s\n--- stderr\n%s" % (
            self.code, self.elapsed, self.out[-4000:], self.err[-4000:])


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="irp-e2e-")
        self.state = os.path.join(self.dir, "state")
        self.env = dict(os.environ)
        self.env.pop("IRP_STATE_DIR", None)
        self.env.pop("IRP_CONFIG", None)
        self.env["NO_COLOR"] = "1"
        self.env["IRP_OPERATOR"] = "tester"
        self.results = []           # every Result of irp, for the canary sweep
        self.secret_files = set()   # files the test itself fills with a secret

    def allow_secret_file(self, path):
        """A file the test writes a secret into on purpose (a config, what a child received)."""
        self.secret_files.add(os.path.realpath(path))

    def canary_leaks(self):
        """Where a secret value (CANARY_MARK) leaked: irp's outputs, files left behind."""
        mark, leaks = CANARY_MARK.encode(), []
        for r in self.results:
            SWEEP["outputs"] += 1
            if CANARY_MARK in r.out or CANARY_MARK in r.err:
                leaks.append("irp's output: %r" % r)
        for root, _, files in os.walk(self.dir):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path) or os.path.realpath(path) in self.secret_files:
                    continue
                SWEEP["files"] += 1
                try:
                    with open(path, "rb") as f:
                        if mark in f.read():
                            leaks.append(path)
                except OSError:
                    pass
        return leaks

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def playbook(self, steps, header="", name="pb.lua", extra=""):
        """A playbook file from a steps body (Lua list items) and header fields."""
        text = textwrap.dedent(header).strip().rstrip(",")
        body = textwrap.dedent(steps).strip()
        return self.write(name, "return playbook {\n  id = \"t\", title = \"Test\",\n" +
                          (text + ",\n" if text else "") + "  steps = {\n" + body + "\n  },\n}\n" +
                          textwrap.dedent(extra))

    def irp(self, *args, stdin=None, timeout=60, env=None):
        cmd = [IRP] + list(args)
        e = dict(self.env)
        if env:
            e.update(env)
        t0 = time.monotonic()
        p = subprocess.run(cmd, input=stdin if stdin is not None else "", capture_output=True,
                           text=True, timeout=timeout * SLACK, env=e, cwd=self.dir,
                           errors="replace")
        r = Result(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)
        self.results.append(r)
        return r

    def run(self, playbook, *args, **kw):
        return self.irp("run", playbook, "--state-dir", self.state, "--run-id", "r1", *args, **kw)

    def drill(self, playbook, *args, **kw):
        return self.irp("drill", playbook, "--state-dir", self.state, "--run-id", "r1", *args, **kw)

    def journal_path(self, run="r1"):
        return os.path.join(self.state, "runs", run, "journal.jsonl")

    def journal(self, run="r1"):
        """Every record; fails the test if a line is not valid JSON."""
        with open(self.journal_path(run), "rb") as f:
            data = f.read()
        assert data.endswith(b"\n"), "journal does not end with a newline"
        return [json.loads(line) for line in data.decode().splitlines()]

    def events(self, run="r1", step=None):
        return [r["type"] for r in self.journal(run) if step is None or r.get("step") == step]

    def record(self, type_, step=None, run="r1"):
        for r in self.journal(run):
            if r["type"] == type_ and (step is None or r.get("step") == step):
                return r
        raise AssertionError("no %s record%s in %s" % (type_, " for " + step if step else "",
                                                       self.events(run)))


def check(cond, message, result=None):
    if not cond:
        raise AssertionError(message + ("\n" + repr(result) if result is not None else ""))


def no_process_with(marker):
    """True when no process on the machine has marker in its command line."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    return False
        except OSError:
            pass
    return True


def main(modules):
    only = sys.argv[1:]
    passed = failed = 0
    failures = []
    for mod in modules:
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            if only and not any(o in name for o in only):
                continue
            fn = getattr(mod, name)
            env = Env()
            t0 = time.monotonic()
            try:
                fn(env)
                leaks = env.canary_leaks()
                check(not leaks, "a secret value leaked into: %s" % "; ".join(leaks)[:4000])
                passed += 1
                print("ok     %-50s %.2fs" % (name, time.monotonic() - t0), flush=True)
            except Exception:
                failed += 1
                failures.append((name, traceback.format_exc()))
                print("FAILED %-50s %.2fs" % (name, time.monotonic() - t0), flush=True)
            finally:
                env.close()
    for name, tb in failures:
        print("\n==== %s\n%s" % (name, tb))
    print("canary sweep: %d outputs of irp and %d files left by the tests searched for secret values"
          " (a leak fails its test)" % (SWEEP["outputs"], SWEEP["files"]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
