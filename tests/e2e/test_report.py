"""End-to-end tests of irp report: a real run or drill of a small playbook, then the
report in md, html and json: header, integrity, metrics, approvals with who,
evidence hashes, DRILL marking, hostile strings made inert, a tampered journal,
lookup errors, -o and the exit codes."""
import hashlib
import json
import os
import re
import subprocess
import time
from harness import IRP, SLACK, check

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

HOSTILE = '<script>alert(1)</script> "q" & co'

PB_HEADER = '''
    phases = { "detection", "containment", "recovery" },
    objectives = { contain_within = "1h", resolve_within = "1s" },
    inputs = { host = { default = "web-01" } },
'''
PB_STEPS = '''
    step "confirm" { phase = "detection", title = "Confirm on {{host}}", manual = "Look at the EDR." },
    step "isolate" { phase = "containment", title = "Isolate {{host}}", approval = "incident-commander",
      run = function(ctx)
        local r = ctx.exec{ "echo", "isolated", ctx.vars.host }
        local a = ctx.artifact("edr-" .. ctx.vars.host .. ".txt", r.stdout)
        return { sha = a.sha256 }
      end },
    step "restore" { phase = "recovery", run = function(ctx) return "ok" end },
'''
ANSWERS = "done: saw 412 renamed files\nnote: bridge open | Bob is IC\napprove: alice on the bridge\n"


def live_run(env):
    pb = env.playbook(PB_STEPS, header=PB_HEADER)
    r = env.run(pb, stdin=ANSWERS)
    check(r.code == 0, "the run succeeds", r)
    return pb


def report(env, *args, run="r1"):
    return env.irp("report", run, "--state-dir", env.state, *args)


def test_report_live_md_metrics_approvals_evidence(env):
    live_run(env)
    r = report(env)
    check(r.code == 0, "report exit 0", r)
    out = r.out
    check(out.startswith("# Incident report: Test") and "DRILL" not in out, "a live report, no DRILL", r)
    n = len(env.journal())
    head = env.journal()[-1]
    check("journal verified: %d records, head seq %d sha256:" % (n, head["seq"]) in out, "integrity line", r)
    check(re.search(r"\| Time to acknowledge \| [0-9.]+m?s \| first operator action: manual.answered by tester "
                    r"at step confirm", out), "time to acknowledge: the manual answer", r)
    check(re.search(r"\| Time to contain \| [0-9.]+m?s \| end of the containment phase", out), "time to contain", r)
    check(re.search(r"\| Time to resolve \| [0-9.]+m?s \| run finished: succeeded", out), "time to resolve", r)
    check(re.search(r"\| contain_within \| containment \| 1h00m \| T\+[^|]+ \| met \|", out), "objective met", r)
    check(re.search(r"\| resolve_within \| the whole run \| 1.0s \|", out), "whole-run objective listed", r)
    check("| Status | SUCCEEDED |" in out and "| Started by | tester on " in out, "status, who", r)
    check("| host | web-01 |" in out, "inputs", r)
    check(re.search(r"\| isolate \| approval.granted \| tester \| granted \| operator \| alice on the bridge \|", out),
          "approval with who and note", r)
    check("bridge open \\| Bob is IC" in out, "a | in a note is escaped in the table", r)
    check("$ echo isolated web-01 -> exit 0" in out, "the command on the timeline", r)
    check("started: Isolate web-01" in out, "step titles as shown", r)
    art = env.record("artifact.stored", "isolate")["data"]
    with open(os.path.join(env.dir, art["path"]) if not os.path.isabs(art["path"]) else art["path"], "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    check(sha == art["sha256"] and ("| edr-web-01.txt | %s | 16 |" % sha) in out, "evidence row with the file's sha256", r)
    for phase in ("detection", "containment", "recovery"):
        check(re.search(r"\| %s \| T\+[^|]+ \| T\+[^|]+ \| [^|]+ \|" % phase, out), "phase %s timed" % phase, r)


def test_report_json_is_the_same_model(env):
    live_run(env)
    r = report(env, "--format", "json")
    check(r.code == 0, "exit 0", r)
    m = json.loads(r.out)
    j = env.journal()
    check(m["run"] == "r1" and m["mode"] == "live" and m["drill"] is False, "run, mode: %r" % m["run"])
    check(m["status"] == "succeeded" and m["ended"] == j[-1]["ts"] or m["ended"], "status, ended")
    check(m["integrity"]["intact"] is True and m["integrity"]["records"] == len(j), "integrity: %r" % m["integrity"])
    check(len(m["timeline"]) == len(j) and [e["seq"] for e in m["timeline"]] == [x["seq"] for x in j],
          "one timeline entry per record")
    ack = m["metrics"]["acknowledge"]
    check(ack["by"] == "tester" and ack["event"] == "manual.answered" and ack["step"] == "confirm", "ack: %r" % ack)
    ans = env.record("manual.answered", "confirm")
    started = env.record("run.started")
    from datetime import datetime

    def ms(ts):
        return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000)
    check(ack["ms"] == ms(ans["ts"]) - ms(started["ts"]), "ack measured from run.started: %r" % ack)
    check(m["metrics"]["contain"]["ms"] == [p for p in m["phases"] if p["phase"] == "containment"][0]["end_ms"],
          "contain = end of containment")
    check(m["metrics"]["resolve"]["status"] == "succeeded", "resolve")
    check([p["phase"] for p in m["phases"]] == ["detection", "containment", "recovery"], "phases in order")
    objs = {o["objective"]: o for o in m["objectives"]}
    check(objs["contain_within"]["verdict"] == "met", "contain_within met: %r" % objs)
    check(objs["resolve_within"]["verdict"] in ("met", "breached"), "resolve_within judged: %r" % objs)
    dec = [d for d in m["decisions"] if d["type"] == "approval.granted"]
    check(dec and dec[0]["actor"] == "tester" and dec[0]["note"] == "alice on the bridge" and
          dec[0]["role"] == "incident-commander", "approval: %r" % dec)
    ev = m["evidence"]
    check(len(ev) == 1 and ev[0]["sha256"] == env.record("artifact.stored")["data"]["sha256"], "evidence: %r" % ev)
    check(m["playbook"]["sha256"] == hashlib.sha256(open(env.dir + "/pb.lua", "rb").read()).hexdigest(),
          "playbook sha256")
    check(m["playbook"]["severity"] == "medium", "severity recorded: %r" % m["playbook"])


def test_report_html_escapes_hostile_strings(env):
    lua_hostile = HOSTILE.replace('"', '\\"')
    pb = env.write("pb.lua", '''
        return playbook {
          id = "t", title = "%s",
          steps = {
            step "m" { title = "%s", manual = "look" },
            step "a" { run = function(ctx) ctx.log("%s") return 1 end },
          },
        }
    ''' % (lua_hostile, lua_hostile, lua_hostile))
    r = env.run(pb, stdin="note: %s\x1b]0;owned\x07\ndone: %s\n" % (HOSTILE, HOSTILE))
    check(r.code == 0, "run succeeds", r)
    check(env.record("operator.note", "m")["data"]["note"].startswith(HOSTILE), "the note is journaled as typed")
    h = report(env, "--format", "html")
    check(h.code == 0, "html exit 0", h)
    html = h.out
    check(html.startswith("<!DOCTYPE html>") and "<svg" in html and "</svg>" in html, "a page with an svg", h)
    check("<script" not in html.lower(), "no script element anywhere", h)
    check("alert(1)" in html and "&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &amp; co" in html,
          "the hostile text is shown escaped", h)
    check("\x1b" not in html and "\x07" not in html and "^[]0;owned^G" in html, "control characters inert", h)
    check(not re.search(r'(src|href)\s*=', html, re.I) and "@import" not in html and "url(" not in html,
          "no external resource", h)
    md = report(env)
    check("\x1b" not in md.out and "\x07" not in md.out, "md: no raw control characters", md)
    check("\\<script>alert(1)\\</script>" in md.out, "md: markup escaped", md)
    js = report(env, "--format", "json")
    m = json.loads(js.out)
    check(m["playbook"]["title"] == HOSTILE, "json keeps the exact text")


def test_report_drill_is_marked_and_has_the_scorecard(env):
    pb = env.playbook(PB_STEPS, header=PB_HEADER)
    r = env.drill(pb, "--yes")
    check(r.code == 0, "drill succeeds", r)
    md = report(env)
    check(md.code == 0, "exit 0", md)
    check(md.out.startswith("# DRILL REPORT: Test") and "**DRILL: a tabletop exercise" in md.out, "DRILL marked", md)
    check("| Run | r1 (DRILL) |" in md.out and "## DRILL scorecard" in md.out, "run line and scorecard", md)
    check("-> exit 0 (0ms, simulated)" in md.out, "commands simulated", md)
    check("no operator action on record" in md.out, "--yes answers are not an acknowledgement", md)
    h = report(env, "--format", "html")
    check('<div class="drill">DRILL' in h.out and "<h1>DRILL REPORT: " in h.out, "html DRILL banner", h)
    m = json.loads(report(env, "--format", "json").out)
    check(m["drill"] is True and m["clock"] == "drill" and m["scorecard"]["status"] == "succeeded", "json drill")
    check(m["phases"] == [dict(p, complete=True) for p in m["scorecard"]["phases"]], "phases from the scorecard")


def test_report_of_a_tampered_journal_says_so(env):
    live_run(env)
    path = env.journal_path()
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    i = [k for k, l in enumerate(lines) if b"alice on the bridge" in l][0]
    check(0 < i < len(lines) - 3, "a record in the middle")
    lines[i] = lines[i].replace(b"alice on the bridge", b"mallory on the bridge")
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    seq = json.loads(lines[i])["seq"]
    r = report(env)
    check(r.code == 65, "a broken journal: exit 65", r)
    check("WARNING: THE JOURNAL FAILS VERIFICATION" in r.out and "journal verified" not in r.out, "loud warning", r)
    check("Records 1 to %d verified" % (seq - 1) in r.out, "names where it breaks", r)
    check("mallory on the bridge" in r.out and "| %d ? |" % seq in r.out, "still rendered, marked unverified", r)
    check("WARNING" in r.err and "irp verify r1" in r.err, "stderr says so too", r)
    m = json.loads(report(env, "--format", "json").out)
    check(m["integrity"]["intact"] is False and m["integrity"]["verified_through"] == seq - 1, "json: %r" % m["integrity"])
    # A line that is no longer JSON at all: the rest is still reported.
    lines[i] = b"garbage" + lines[i][7:]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines))
    h = report(env, "--format", "html")
    check(h.code == 65 and 'class="bad"' in h.out and "run succeeded" in h.out, "html of a damaged journal", h)
    m = json.loads(report(env, "--format", "json").out)
    check(m["integrity"]["unreadable_lines"] == 1 and m["status"] == "succeeded", "json: %r" % m["integrity"])


def test_report_lookup_and_usage_errors(env):
    r = report(env, run="nope")
    check(r.code == 65 and "no run 'nope'" in r.err and r.out == "", "missing run: 65, clear message", r)
    r = env.irp("report", os.path.join(env.dir, "missing.jsonl"))
    check(r.code == 65 and "missing.jsonl" in r.err, "missing file: 65", r)
    live_run(env)
    r = report(env, "--format", "nonsense")
    check(r.code == 64 and "md, html or json" in r.err, "bad format: 64", r)
    r = env.irp("report")
    check(r.code == 64, "no run: 64", r)
    r = env.irp("report", "--help")
    check(r.code == 0 and "usage: irp report" in r.out, "--help", r)
    check("irp report" in env.irp("--help").out, "in irp --help")
    # by journal path, from anywhere
    r = env.irp("report", env.journal_path(), "--format", "json")
    check(r.code == 0 and json.loads(r.out)["run"] == "r1", "a journal file path works", r)


def test_report_output_file(env):
    live_run(env)
    out = os.path.join(env.dir, "r.html")
    with open(out, "w") as f:
        f.write("old")
    r = report(env, "--format", "html", "-o", out)
    check(r.code == 0 and r.out == "", "-o: nothing on stdout", r)
    with open(out) as f:
        text = f.read()
    check(text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n"), "the file is replaced whole")
    check(not [n for n in os.listdir(env.dir) if ".tmp." in n], "no temporary file left")
    before = open(env.journal_path(), "rb").read()
    r = report(env, "-o", env.journal_path())
    check(r.code == 64 and "journal itself" in r.err, "-o the journal: refused", r)
    check(open(env.journal_path(), "rb").read() == before, "the journal is untouched")
    r = report(env, "-o", os.path.join(env.dir, "no", "such", "dir", "r.md"))
    check(r.code == 74, "unwritable -o: 74", r)


def test_report_of_a_run_still_going(env):
    pb = env.playbook(PB_STEPS, header=PB_HEADER)
    p = subprocess.Popen([IRP, "run", pb, "--state-dir", env.state, "--run-id", "r1"], cwd=env.dir, env=env.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20 * SLACK
        while time.monotonic() < deadline:
            if os.path.exists(env.journal_path()) and b'"step.started"' in open(env.journal_path(), "rb").read():
                break
            time.sleep(0.05)
        r = report(env)
        check(r.code == 0, "a running run is reported", r)
        check("| Status | OPEN (running now, pid %d) |" % p.pid in r.out and "| Ended (UTC) | still open |" in r.out,
              "still open, running", r)
        check("| Time to resolve | - | the run has not finished |" in r.out, "not resolved yet", r)
    finally:
        p.stdin.write(b"done\napprove\n")
        p.stdin.close()
        p.stdin = None
        p.communicate(timeout=30 * SLACK)
    check(p.returncode == 0, "the run itself went on: %s" % p.returncode)


def test_report_shipped_ransomware_drill(env):
    r = env.irp("drill", os.path.join(ROOT, "playbooks", "ransomware.lua"), "--scenario",
                os.path.join(ROOT, "playbooks", "scenarios", "ransomware-friday-night.lua"), "-v", "host=web-07",
                "--state-dir", env.state, "--run-id", "r1", "--speed", "3000", timeout=120)
    check(r.code == 0, "the shipped drill passes", r)
    md = report(env)
    check(md.code == 0, "exit 0", md)
    out = md.out
    check(out.startswith("# DRILL REPORT: Ransomware outbreak on a host"), "title", md)
    check("| Severity | critical |" in out and "| Scenario | Friday night: LockBit on the customer portal |" in out,
          "severity, scenario", md)
    check("| contain_within | containment | 30m00s |" in out, "the playbook's objective", md)
    check(re.search(r"\| isolate-edr \| approval.granted \| [^|]+ \| granted \| scenario \| Priya, by phone", out),
          "the IC's approval", md)
    check(re.search(r"\| release-isolation \| approval.denied \| [^|]+ \| denied \| scenario \| Priya - not before",
                    out), "the denial", md)
    check("| 2 | pagerduty-secops |" in out, "tier 2 escalation", md)
    check("- verdict: **passed**" in out and "- injects shown: 5 of 5" in out, "scorecard", md)
    for a in (x["data"] for x in env.journal() if x["type"] == "artifact.stored"):
        p = a["path"] if os.path.isabs(a["path"]) else os.path.join(env.dir, a["path"])
        check(hashlib.sha256(open(p, "rb").read()).hexdigest() == a["sha256"] and a["sha256"] in out,
              "evidence %s hashed and listed" % a["name"])
    h = report(env, "--format", "html")
    check(h.code == 0 and h.out.count("<svg") == 1 and "containment" in h.out and "DRILL REPORT" in h.out, "html", h)
    check(len(h.out) < 400 * 1024, "a page of reasonable size: %d bytes" % len(h.out))
