#!/usr/bin/env python3
"""journal_resume.py - issue 3's benchmark, the irp half: the time `irp
resume` takes on a run whose journal holds 10,000 events. The journal is
made by a real run (so it has exactly what irp writes): a playbook of 1,000
steps that each log 8 lines (10 events a step), then a step that waits and
is interrupted with SIGINT. The run directory is copied aside and restored
before each timed resume (best of 3), which skips the in-flight step and
finishes the run. For scale it also times loading the same playbook alone
(`irp check`) and `irp verify` of the journal.
Usage: python3 bench/journal_resume.py [path/to/irp]   (default ./irp)"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, LOGS = 1000, 8


def best_of(n, fn):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
    return min(times)


def run(cmd, env, cwd, want=0):
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if p.returncode != want:
        sys.exit("journal_resume: %s exited %d (wanted %d)\n%s\n%s" % (" ".join(cmd), p.returncode, want,
                                                                       p.stdout[-2000:], p.stderr[-2000:]))
    return p


def main():
    irp = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "irp"))
    work = tempfile.mkdtemp(prefix="irp-bench-journal-")
    env = dict(os.environ, IRP_OPERATOR="bench", NO_COLOR="1")
    env.pop("IRP_STATE_DIR", None)
    env.pop("IRP_CONFIG", None)
    try:
        state = os.path.join(work, "state")
        pb = os.path.join(work, "big.lua")
        with open(pb, "w") as f:
            f.write('return playbook {\n  id = "big", title = "Ten thousand events",\n  steps = {\n')
            for i in range(STEPS):
                f.write('    step "s%04d" { run = function(ctx) for i = 1, %d do ctx.log("line " .. i) end '
                        'return i end },\n' % (i, LOGS))
            f.write('    step "last" { run = function(ctx) ctx.exec{ "sleep", "60" } end },\n  },\n}\n')
        t0 = time.monotonic()
        p = subprocess.Popen([irp, "run", pb, "--state-dir", state, "--run-id", "big"], env=env, cwd=work,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        journal = os.path.join(state, "runs", "big", "journal.jsonl")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with open(journal, "rb") as f:
                    f.seek(max(0, os.path.getsize(journal) - 4096))
                    if b'"step.started","step":"last"' in f.read():
                        break
            except OSError:
                pass
            time.sleep(0.05)
        made = time.monotonic() - t0
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        if p.returncode != 130:
            sys.exit("journal_resume: the run did not stop as interrupted (exit %d)\n%s" % (p.returncode, err))
        with open(journal) as f:
            events = sum(1 for _ in f)
        size = os.path.getsize(journal)
        run_dir = os.path.join(state, "runs", "big")
        saved = os.path.join(work, "saved")
        shutil.copytree(run_dir, saved)

        def resume():
            shutil.rmtree(run_dir)
            shutil.copytree(saved, run_dir)
            run([irp, "resume", "big", "--state-dir", state, "--in-flight", "skip"], env, work)

        t_resume = best_of(3, resume)
        with open(journal) as f:
            last = json.loads(f.readlines()[-1])
        if last["type"] != "run.finished":
            sys.exit("journal_resume: the resumed run did not finish: %r" % last)
        t_check = best_of(3, lambda: run([irp, "check", pb], env, work))
        shutil.rmtree(run_dir)
        shutil.copytree(saved, run_dir)
        t_verify = best_of(3, lambda: run([irp, "verify", "big", "--state-dir", state], env, work))
        print("journal: resume from a %d-event journal (%.1f MiB, %d steps done): %.0f ms "
              "(of which loading the %d-step playbook, as irp check: %.0f ms); irp verify: %.0f ms; "
              "making the journal by a real run took %.1f s"
              % (events, size / 2 ** 20, STEPS, t_resume * 1e3, STEPS + 1, t_check * 1e3, t_verify * 1e3, made))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
