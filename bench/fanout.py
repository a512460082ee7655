#!/usr/bin/env python3
"""fanout.py - issue 4's benchmark: one notification to each of 20 local
endpoints that answer after 100 ms. The notifications are queued while the
endpoints are unreachable, then `irp outbox flush` sends all 20 at once
(curl multi on the libuv loop): the total should be close to one answer
(under 250 ms), against about two seconds when the same 20 are sent one
after the other (`irp notify test`, once per notifier). Prints both.
Usage: python3 bench/fanout.py [path/to/irp]   (default ./irp)"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
from receiver import Receiver, free_port  # noqa: E402

N, DELAY = 20, 0.1


def main():
    irp = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "irp"))
    work = tempfile.mkdtemp(prefix="irp-bench-")
    state, conf = os.path.join(work, "state"), os.path.join(work, "irp.conf.lua")
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", IRP_OPERATOR="bench")
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(k, None)
    with open(conf, "w") as f:
        f.write("notifiers = {\n" + "".join(
            '  n%02d = { type = "webhook", url = secret "N%02d_URL", timeout = "5s" },\n' % (i, i) for i in range(N))
            + "}\n")
    receivers = []
    try:
        # 1. queue one notification per notifier while nothing answers
        down = "http://127.0.0.1:%d/hook" % free_port()
        for i in range(N):
            env["N%02d_URL" % i] = down
        for i in range(N):
            r = subprocess.run([irp, "notify", "test", "n%02d" % i, "--state-dir", state, "--config", conf,
                                "--wait", "50ms"], env=env, capture_output=True, text=True)
            if r.returncode != 69:
                sys.exit("bench: queuing n%02d: exit %d\n%s" % (i, r.returncode, r.stderr))
        # 2. the endpoints come up; one flush sends the 20 concurrently
        receivers = [Receiver(delay=DELAY) for _ in range(N)]
        for i, rc in enumerate(receivers):
            env["N%02d_URL" % i] = rc.url
        t0 = time.monotonic()
        r = subprocess.run([irp, "outbox", "flush", "--state-dir", state, "--config", conf, "--wait", "30s"],
                           env=env, capture_output=True, text=True)
        fanout = time.monotonic() - t0
        if r.returncode != 0 or sum(rc.count() for rc in receivers) != N:
            sys.exit("bench: flush failed: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        # 3. the same 20, one after the other
        t0 = time.monotonic()
        for i in range(N):
            r = subprocess.run([irp, "notify", "test", "n%02d" % i, "--state-dir", state, "--config", conf],
                               env=env, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("bench: notify test n%02d: exit %d\n%s" % (i, r.returncode, r.stderr))
        sequential = time.monotonic() - t0
    finally:
        for rc in receivers:
            rc.stop()
        shutil.rmtree(work, ignore_errors=True)
    verdict = "ok" if fanout < 0.25 else "SLOW (target: under 250 ms)"
    print("fanout: %d webhook endpoints, each answering after %d ms" % (N, DELAY * 1000))
    print("  concurrent (irp outbox flush, one process):  %6.0f ms  %s" % (fanout * 1000, verdict))
    print("  sequential (irp notify test, one at a time): %6.0f ms" % (sequential * 1000))
    print("  speed-up: %.1fx" % (sequential / fanout))


if __name__ == "__main__":
    main()
