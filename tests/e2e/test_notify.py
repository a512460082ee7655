"""End-to-end tests of notification delivery: `irp notify test`, `irp outbox
list|flush` against real HTTP(S) receivers on 127.0.0.1 (receiver.py).
Payload fields of every kind; Standard Webhooks signatures verified by the
receiver; endpoints that are down, slow, answer 500, 429 with Retry-After,
410, 302, a Slack error word, Teams throttling inside a 200; a TLS server
with a self-signed certificate (refused; accepted with ca_file); 200
notifications queued while the endpoint is down, two restarts, then
delivered exactly once each; two concurrent flushes never send one twice.
Every test checks that the secret canary appears in no file it left and
no output of irp."""
import base64
import json
import os
import re
import secrets
import subprocess
import time

from harness import IRP, SLACK, check
from receiver import Receiver, free_port, make_self_signed

CANARY = "irpcanary" + secrets.token_hex(8)
WHSEC = "whsec_" + base64.b64encode(("signing-" + CANARY).encode()).decode()
PD_KEY = "pdkey-" + CANARY
OG_KEY = "ogkey-" + CANARY


class Suite:
    """Wraps a test's Env: every irp output is kept for the canary check."""

    def __init__(self, env):
        self.env = env
        self.outputs = []
        env.env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                        "SOC_SECRET": WHSEC, "PD_KEY": PD_KEY, "OG_KEY": OG_KEY})
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            env.env.pop(k, None)

    def secret_url(self, name, url):
        """Puts url (with the canary in its path) into secret `name`."""
        value = url.rstrip("/") + "/" + CANARY
        self.env.env[name] = value
        return value

    def config(self, body):
        path = self.env.write("irp.conf.lua", "notifiers = {\n" + body + "\n}\n")
        self.env.allow_secret_file(path)  # the test's own words; irp must copy nothing from it
        return path

    def irp(self, *args, **kw):
        r = self.env.irp(*args, **kw)
        self.outputs.append(r)
        return r

    def test(self, name, *args, **kw):
        return self.irp("notify", "test", name, "--state-dir", self.env.state, "--config",
                        os.path.join(self.env.dir, "irp.conf.lua"), *args, **kw)

    def outbox(self, *args, **kw):
        return self.irp("outbox", *args, "--state-dir", self.env.state, "--config",
                        os.path.join(self.env.dir, "irp.conf.lua"), **kw)

    def queued(self):
        r = self.outbox("list", "--json")
        check(r.code == 0, "outbox list --json", r)
        return json.loads(r.out)

    def no_canary(self):
        for r in self.outputs:
            check(CANARY not in r.out and CANARY not in r.err, "the canary leaked into irp's output", r)
            check(WHSEC not in r.out and WHSEC not in r.err, "the signing secret leaked into irp's output", r)
        for root, _, files in os.walk(self.env.dir):
            for f in files:
                path = os.path.join(root, f)
                if f == "irp.conf.lua":
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
                check(CANARY.encode() not in data and WHSEC.encode() not in data,
                      "the canary leaked into " + path)


def webhook(name, extra=""):
    return '  %s = { type = "webhook", url = secret "%s_URL", signing_secret = secret "SOC_SECRET", ' \
           'backoff = "100ms", timeout = "2s"%s },' % (name, name.upper(), extra)


# --------------------------------------------------------------- commands

def test_notify_usage_and_help(env):
    s = Suite(env)
    for cmd in (["notify", "--help"], ["outbox", "--help"], ["notify", "test", "--help"]):
        r = s.irp(*cmd)
        check(r.code == 0 and "usage: irp " + cmd[0] in r.out, "help of %s" % cmd, r)
    for cmd in (["notify"], ["notify", "test"], ["notify", "send", "x"], ["outbox", "frobnicate"],
                ["outbox", "flush", "--wait", "soon"], ["notify", "test", "x", "--count", "0"]):
        r = s.irp(*cmd)
        check(r.code == 64 and r.err.strip(), "usage error for %s" % cmd, r)
    r = s.irp("outbox", "flsh")
    check("did you mean 'flush'" in r.err, "subcommand suggestion", r)
    s.config('  ["slack-ir"] = { type = "slack", url = "http://127.0.0.1:9/x" },')
    r = s.test("slack-it")
    check(r.code == 64 and "no notifier named 'slack-it'" in r.err and "did you mean 'slack-ir'" in r.err,
          "unknown notifier named with a suggestion", r)
    r = s.outbox("list")
    check(r.code == 0 and "empty" in r.out, "empty outbox", r)
    s.no_canary()


def test_config_errors_name_file_and_line(env):
    s = Suite(env)
    s.config('  ok = { type = "stdout" },\n  pd = {\n    type = "pagerdutty",\n    routing_key = secret "PD_KEY" },')
    r = s.test("ok")
    check(r.code == 65, "a bad configuration exits 65", r)
    check(re.search(r"irp\.conf\.lua:4: notifier 'pd' has unknown type 'pagerdutty' \(did you mean 'pagerduty'\?\)",
                    r.err), "file:line and suggestion", r)
    s.config('  w = { type = "webhook", url = "https://x.example", tiemout = "1s" },')
    r = s.outbox("flush")
    check(r.code == 65 and "unknown field 'tiemout' (did you mean 'timeout'?)" in r.err, "unknown field", r)
    s.config('  p = { type = "pagerduty", routing_key = "' + PD_KEY + '" },')
    r = s.test("p")
    check(r.code == 65 and "routing_key must be secret" in r.err, "keys in clear refused", r)
    check(PD_KEY not in r.err, "the key is not echoed", r)
    s.outputs.pop()  # that output is checked above; the file holds the key on purpose
    s.no_canary()


def test_stdout_and_file_notifiers(env):
    s = Suite(env)
    s.config('  console = { type = "stdout" },\n  log = { type = "file", path = "%s" },'
             % os.path.join(env.dir, "notes.jsonl"))
    r = s.test("console", "--text", "hello from the test")
    check(r.code == 0 and "  >> notify console: hello from the test" in r.out, "stdout notifier prints", r)
    r = s.test("log", "--text", "to the file")
    check(r.code == 0, "file notifier", r)
    lines = [json.loads(l) for l in open(os.path.join(env.dir, "notes.jsonl"))]
    check(len(lines) == 1 and lines[0]["text"] == "to the file" and lines[0]["target"] == "log"
          and lines[0]["event"] == "test" and lines[0]["id"].startswith("msg_"), "one JSON line: %r" % lines)
    # embedded default (no configuration): stdout answers to any name
    os.remove(os.path.join(env.dir, "irp.conf.lua"))
    r = s.irp("notify", "test", "anything", "--state-dir", env.state)
    check(r.code == 0 and ">> notify anything:" in r.out, "embedded stdout notifier", r)
    s.no_canary()


# --------------------------------------------------------------- payloads

def test_payload_fields_of_every_kind(env):
    s = Suite(env)
    with Receiver(secret=WHSEC) as hook, Receiver(body="ok") as slack, Receiver(status=202) as teams, \
            Receiver(status=202, body='{"status":"success","message":"Event processed"}') as pd, \
            Receiver(status=202, body='{"result":"Request will be processed","requestId":"x"}') as og:
        s.secret_url("SOC_URL", hook.url)
        s.secret_url("SLACK_URL", slack.url)
        s.secret_url("TEAMS_URL", teams.url)
        s.config(webhook("soc") + "\n"
                 '  slack = { type = "slack", url = secret "SLACK_URL" },\n'
                 '  teams = { type = "teams", url = secret "TEAMS_URL" },\n'
                 '  pd = { type = "pagerduty", routing_key = secret "PD_KEY", url = "%s", source = "irp-e2e" },\n'
                 '  og = { type = "opsgenie", api_key = secret "OG_KEY", api_url = "http://127.0.0.1:%d" },'
                 % (pd.url, og.port))
        for name in ("soc", "slack", "teams", "pd", "og"):
            r = s.test(name, "--text", "payload <check> & more")
            check(r.code == 0 and "delivered through '%s'" % name in r.out, "delivered via " + name, r)

        req = hook.requests[0]
        check(req["sig_ok"], "Standard Webhooks signature verified by the receiver: %r" % req["headers"])
        h = req["headers"]
        check(h["webhook-id"].startswith("msg_") and h["webhook-timestamp"].isdigit()
              and abs(int(h["webhook-timestamp"]) - time.time()) < 60, "webhook headers %r" % h)
        check(h["content-type"] == "application/json", "content type")
        body = req["json"]
        check(body["type"] == "irp.test" and "timestamp" in body, "webhook envelope %r" % body)
        for key in ("run_id", "playbook", "step", "phase", "severity", "status", "operator", "text", "drill"):
            check(key in body["data"], "webhook data has %s: %r" % (key, body["data"]))
        check(body["data"]["operator"] == "tester" and body["data"]["severity"] == "info", "values %r" % body)

        sl = slack.requests[0]["json"]
        check(sl["text"] == "payload &lt;check&gt; &amp; more", "slack text escaped: %r" % sl["text"])
        kinds = [b["type"] for b in sl["blocks"]]
        check(kinds[0] == "header" and "section" in kinds and kinds[-1] == "context", "slack blocks %r" % kinds)
        fields = json.dumps(sl["blocks"])
        for label in ("*Run*", "*Playbook*", "*Severity*", "*Status*", "*Operator*"):
            check(label in fields, "slack field " + label)

        tm = teams.requests[0]["json"]
        check(tm["type"] == "message" and len(tm["attachments"]) == 1, "teams envelope %r" % tm)
        att = tm["attachments"][0]
        check(att["contentType"] == "application/vnd.microsoft.card.adaptive", "teams content type")
        card = att["content"]
        check(card["type"] == "AdaptiveCard" and card["version"] == "1.4" and card["body"], "adaptive card %r" % card)
        facts = [f["title"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]]
        check({"Run", "Playbook", "Severity", "Status", "Operator"} <= set(facts), "teams facts %r" % facts)

        check(len(pd.requests) == 2, "pagerduty test: trigger then resolve (%d)" % len(pd.requests))
        trig, res = pd.requests[0]["json"], pd.requests[1]["json"]
        check(trig["routing_key"] == PD_KEY and trig["event_action"] == "trigger"
              and trig["dedup_key"].startswith("irp-notify-test-"), "pagerduty trigger %r" % trig.keys())
        p = trig["payload"]
        for key in ("summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"):
            check(key in p, "pagerduty payload has " + key)
        check(p["source"] == "irp-e2e" and p["severity"] == "info", "pagerduty values")
        check(res["event_action"] == "resolve" and res["dedup_key"] == trig["dedup_key"], "one dedup_key, resolved")
        check(pd.requests[0]["time"] <= pd.requests[1]["time"], "trigger before resolve")

        check(len(og.requests) == 2, "opsgenie test: create then close (%d)" % len(og.requests))
        create, close = og.requests
        check(create["path"] == "/v2/alerts" and create["headers"]["authorization"] == "GenieKey " + OG_KEY,
              "opsgenie create path and GenieKey")
        alias = create["json"]["alias"]
        check(alias.startswith("irp-notify-test-") and create["json"]["message"] and
              create["json"]["priority"] == "P5", "opsgenie alert %r" % create["json"].keys())
        check(close["path"] == "/v2/alerts/%s/close?identifierType=alias" % alias, "close by alias: " + close["path"])
    s.no_canary()


def test_signature_and_stable_id_across_retries(env):
    s = Suite(env)
    answers = lambda i, req: (500 if i < 2 else 200, {}, "try again" if i < 2 else "", 0)
    with Receiver(respond=answers, secret=WHSEC, limit=10) as hook:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc"))
        r = s.test("soc", "--wait", "20s")
        check(r.code == 0, "delivered on the third attempt", r)
        check(r.err.count("retry") == 2 and "HTTP 500" in r.err, "two retries reported", r)
        ids = {q["headers"]["webhook-id"] for q in hook.requests}
        check(hook.count() == 3 and len(ids) == 1, "one webhook-id across 3 attempts: %r" % ids)
        check(all(q["sig_ok"] for q in hook.requests), "every attempt signed correctly")
        check(hook.overflow == 0, "bounded")
    check(s.queued() == [], "nothing left in the outbox")
    s.no_canary()


# --------------------------------------------------------------- failures

def test_endpoint_down_stays_queued(env):
    s = Suite(env)
    s.secret_url("SOC_URL", "http://127.0.0.1:%d/hook" % free_port())
    s.config(webhook("soc"))
    t0 = time.monotonic()
    r = s.test("soc", "--wait", "1s")
    check(r.code == 69 and "not delivered" in r.err, "exit 69 when not delivered", r)
    check(time.monotonic() - t0 < 5 * SLACK, "bounded by --wait")
    left = s.queued()
    check(len(left) == 1 and left[0]["target"] == "soc" and left[0]["attempts"] >= 1
          and ("refused" in left[0]["last_error"] or "connect" in left[0]["last_error"]), "kept: %r" % left)
    r = s.outbox("list")
    check(left[0]["id"] in r.out and "1 notification waiting" in r.out, "list shows it", r)
    s.no_canary()


def test_slow_endpoint_times_out(env):
    s = Suite(env)
    with Receiver(delay=3.0, limit=5) as hook:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc", ', timeout = "300ms", connect_timeout = "200ms"'))
        t0 = time.monotonic()
        r = s.test("soc", "--wait", "1s")
        check(r.code == 69 and "timed out" in r.err.lower(), "timed out", r)
        check(time.monotonic() - t0 < 2.5 * SLACK, "the attempt did not wait for the slow answer")
        check(hook.count() <= 5 and hook.overflow == 0, "bounded requests")
    s.no_canary()


def test_retry_after_is_honoured(env):
    s = Suite(env)
    answers = lambda i, req: (429, {"Retry-After": "1"}, "slow down", 0) if i == 0 else (200, {}, "", 0)
    with Receiver(respond=answers, limit=5) as hook:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc", ', backoff = "10ms"'))
        r = s.test("soc", "--wait", "10s")
        check(r.code == 0 and "HTTP 429" in r.err, "delivered after a 429", r)
        check(hook.count() == 2, "two requests")
        gap = hook.requests[1]["time"] - hook.requests[0]["time"]
        check(gap >= 0.95, "Retry-After: 1 honoured (gap %.2fs, backoff alone would be 10ms)" % gap)
    s.no_canary()


def test_410_disables_the_notifier(env):
    s = Suite(env)
    with Receiver(status=410, body="gone", limit=5) as hook:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc"))
        r = s.test("soc", "--count", "3", "--wait", "5s")
        check(r.code == 69, "not delivered", r)
        check("410 Gone" in r.err and "disabled" in r.err, "loudly on stderr", r)
        check(hook.count() == 1, "nothing more sent after the 410 (%d requests)" % hook.count())
    check(s.queued() == [], "410 is permanent: removed from the outbox")
    s.no_canary()


def test_redirect_is_not_followed(env):
    s = Suite(env)
    with Receiver(limit=5) as target:
        with Receiver(status=302, headers={"Location": target.url}, limit=5) as hook:
            s.secret_url("SOC_URL", hook.url)
            s.config(webhook("soc"))
            r = s.test("soc", "--wait", "5s")
            check(r.code == 69 and "redirects are not followed" in r.err, "302 refused", r)
            check(hook.count() == 1 and target.count() == 0, "not followed, not retried")
    check(s.queued() == [], "permanent: removed")
    s.no_canary()


def test_slack_error_word_is_permanent(env):
    s = Suite(env)
    with Receiver(status=404, body="channel_not_found", limit=5) as slack:
        s.secret_url("SLACK_URL", slack.url)
        s.config('  slack = { type = "slack", url = secret "SLACK_URL", backoff = "50ms" },')
        r = s.test("slack", "--wait", "5s")
        check(r.code == 69 and "channel_not_found" in r.err and "given up" in r.err, "permanent", r)
        check(slack.count() == 1, "not retried")
    s.no_canary()


def test_teams_throttling_inside_a_200(env):
    s = Suite(env)
    throttled = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 " \
                "with ContextId tcid=0,server=msgapi-production"
    answers = lambda i, req: (200, {}, throttled, 0) if i == 0 else (202, {}, "", 0)
    with Receiver(respond=answers, limit=5) as teams:
        s.secret_url("TEAMS_URL", teams.url)
        s.config('  teams = { type = "teams", url = secret "TEAMS_URL", backoff = "100ms" },')
        r = s.test("teams", "--wait", "10s")
        check(r.code == 0 and "throttled" in r.err, "a 200 reporting 429 is retried", r)
        check(teams.count() == 2, "two requests")
    s.no_canary()


def test_tls_self_signed_is_refused(env):
    s = Suite(env)
    cert, key = make_self_signed(env.dir)
    with Receiver(certfile=cert, keyfile=key, limit=5) as hook:
        s.secret_url("SOC_URL", hook.url)
        check(hook.url.startswith("https://"), "a TLS receiver")
        s.config(webhook("soc"))
        r = s.test("soc", "--wait", "1s")
        check(r.code == 69 and "certificate" in r.err.lower(), "self-signed certificate refused", r)
        check(hook.count() == 0, "no request got through")
        # the same server, trusted through ca_file: delivered (the queued one stays for flush)
        s.config(webhook("soc", ', ca_file = "%s"' % cert))
        r = s.test("soc", "--wait", "5s")
        check(r.code == 0, "trusted with ca_file", r)
        r = s.outbox("flush", "--wait", "5s")
        check(r.code == 0 and hook.count() == 2, "the refused one delivered by flush", r)
    s.no_canary()


def test_secret_missing_keeps_the_message(env):
    s = Suite(env)
    env.env.pop("NOT_SET_URL", None)
    s.config('  x = { type = "slack", url = secret "NOT_SET_URL" },')
    r = s.test("x", "--wait", "1s")
    check(r.code == 69 and "secret NOT_SET_URL is not set" in r.err and "left in the outbox" in r.err,
          "missing secret named", r)
    check(len(s.queued()) == 1, "kept for a run that has the secret")
    s.no_canary()


# ------------------------------------------------------ the long outage

def test_200_queued_while_down_delivered_once_after_two_restarts(env):
    s = Suite(env)
    port = free_port()
    s.secret_url("SOC_URL", "http://127.0.0.1:%d/hook" % port)
    s.config(webhook("soc", ', timeout = "3s"'))
    r = s.test("soc", "--count", "200", "--wait", "500ms", timeout=120)
    check(r.code == 69, "endpoint down: not delivered", r)
    queued = s.queued()
    check(len(queued) == 200, "200 in the outbox (%d)" % len(queued))
    for restart in range(2):
        r = s.outbox("flush", "--wait", "500ms", timeout=120)
        check(r.code == 69 and "200 remain" in r.out, "restart %d: still down, all kept" % (restart + 1), r)
    with Receiver(secret=WHSEC, port=port, limit=400) as hook:
        r = s.outbox("flush", "--wait", "60s", timeout=180)
        check(r.code == 0 and "200 delivered" in r.out, "all delivered once the endpoint is back", r)
        ids = [q["headers"]["webhook-id"] for q in hook.requests]
        check(len(ids) == 200 and len(set(ids)) == 200, "each webhook-id once: %d requests, %d ids"
              % (len(ids), len(set(ids))))
        check(set(ids) == {q["id"] for q in queued}, "exactly the queued ones")
        check(all(q["sig_ok"] for q in hook.requests), "all signed")
        check(hook.overflow == 0, "bounded")
    check(s.queued() == [], "outbox empty")
    s.no_canary()


def test_concurrent_flushes_never_send_twice(env):
    s = Suite(env)
    port = free_port()
    s.secret_url("SOC_URL", "http://127.0.0.1:%d/hook" % port)
    s.config(webhook("soc"))
    r = s.test("soc", "--count", "40", "--wait", "300ms")
    check(r.code == 69 and len(s.queued()) == 40, "40 queued", r)
    with Receiver(delay=0.05, port=port, limit=100) as hook:
        cmd = [IRP, "outbox", "flush", "--state-dir", env.state, "--config", os.path.join(env.dir, "irp.conf.lua"),
               "--wait", "30s"]
        procs = [subprocess.Popen(cmd, cwd=env.dir, env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        delivered = 0
        for p in procs:
            out, err = p.communicate(timeout=120 * SLACK)
            check(CANARY not in out + err, "canary in a flush's output")
            m = re.search(r"(\d+) delivered", out)
            check(m, "a summary line: " + out)
            delivered += int(m.group(1))
        check(delivered == 40, "the two flushes delivered 40 between them (%d)" % delivered)
        ids = [q["headers"]["webhook-id"] for q in hook.requests]
        check(len(ids) == 40 and len(set(ids)) == 40, "40 sent once each by two flushes (%d, %d distinct)"
              % (len(ids), len(set(ids))))
    check(s.queued() == [], "outbox empty")
    s.no_canary()


def test_flush_records_delivery_in_the_run_journal(env):
    s = Suite(env)
    pb = env.playbook('step "a" { run = function(ctx) return 1 end },')
    r = s.irp("run", pb, "--state-dir", env.state, "--run-id", "r1")
    check(r.code == 0, "a finished run", r)
    with Receiver(limit=5) as hook:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc"))
        # an entry that run r1 left undelivered, as the outbox stores it
        os.makedirs(os.path.join(env.state, "outbox"), exist_ok=True)
        entry = {"v": 1, "id": "msg_1700000000000_abcdefabcdef", "target": "soc", "kind": "webhook", "run": "r1",
                 "step": "a", "created_ms": int(time.time() * 1000), "created": "2026-01-01T00:00:00.000Z",
                 "action": None, "attempts": 2, "next_attempt_ms": 0, "last_error": "HTTP 503",
                 "message": {"event": "escalation", "text": "late", "run_id": "r1", "playbook": "t",
                             "severity": "high", "operator": "tester", "tier": 1, "drill": False, "fields": {}}}
        with open(os.path.join(env.state, "outbox", entry["id"] + ".json"), "w") as f:
            json.dump(entry, f)
        r = s.outbox("flush", "--wait", "10s")
        check(r.code == 0 and hook.count() == 1, "delivered", r)
        check(hook.requests[0]["headers"]["webhook-id"] == entry["id"], "its id is the webhook-id")
    sent = [x for x in env.journal("r1") if x["type"] == "notify.sent"]
    check(len(sent) == 1 and sent[0]["data"]["id"] == entry["id"] and sent[0]["data"]["attempt"] == 3
          and sent[0]["data"]["via"] == "irp outbox flush", "journaled in run r1: %r" % sent)
    r = s.irp("verify", "r1", "--state-dir", env.state)
    check(r.code == 0, "the journal still verifies", r)
    s.no_canary()


def test_ctrl_c_ends_a_flush_and_keeps_the_outbox(env):
    s = Suite(env)
    s.secret_url("SOC_URL", "http://127.0.0.1:%d/hook" % free_port())
    s.config(webhook("soc"))
    r = s.test("soc", "--count", "3", "--wait", "200ms")
    check(r.code == 69 and len(s.queued()) == 3, "3 queued", r)
    cmd = [IRP, "outbox", "flush", "--state-dir", env.state, "--config", os.path.join(env.dir, "irp.conf.lua"),
           "--wait", "5m"]
    p = subprocess.Popen(cmd, cwd=env.dir, env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5 * SLACK)
    t0 = time.monotonic()
    p.send_signal(2)
    out, err = p.communicate(timeout=30 * SLACK)
    check(p.returncode == 130 and "interrupted" in err, "exit 130 on SIGINT: %s %s" % (p.returncode, err))
    check(time.monotonic() - t0 < 2 * SLACK, "promptly")
    check(CANARY not in out + err, "canary")
    check(len(s.queued()) == 3, "nothing lost")
    s.no_canary()


# --------------------------------------------------------------- drills

def test_drill_notifications_journaled_unless_live_notify(env):
    """A drill keeps its notifications in the journal; --live-notify sends them
    for real, each marked DRILL; ctx.http stays simulated either way."""
    s = Suite(env)
    log = os.path.join(env.dir, "notes.log")
    with Receiver(secret=WHSEC, limit=20) as hook, Receiver(limit=5) as api:
        s.secret_url("SOC_URL", hook.url)
        s.config(webhook("soc") + '\n  log = { type = "file", path = "%s" },' % log)
        pb = env.playbook('''
            step "call" { run = function(ctx)
              ctx.http { method = "POST", url = "%s", json = { x = 1 } }
              ctx.notify("log", "isolation started")
              return true
            end },
        ''' % api.url, header='escalation = { { notify = { "soc" } } },')
        conf = os.path.join(env.dir, "irp.conf.lua")
        r = s.irp("drill", pb, "--state-dir", env.state, "--run-id", "quiet", "--config", conf)
        check(r.code == 0, "drill without live channels", r)
        time.sleep(0.3)
        check(hook.count() == 0 and api.count() == 0, "nothing left the machine")
        check(not os.path.exists(log) or os.path.getsize(log) == 0, "the file notifier was not written")
        sent = [x for x in env.journal("quiet") if x["type"] == "notify.sent"]
        check(len(sent) == 2 and all(x["data"].get("simulated") for x in sent),
              "both notifications journaled as simulated: %r" % sent)

        r = s.irp("drill", pb, "--state-dir", env.state, "--run-id", "loud", "--config", conf, "--live-notify")
        check(r.code == 0, "drill with --live-notify", r)
        check(hook.wait_for(1) == 1 and api.count() == 0, "the escalation reached the webhook, ctx.http did not")
        body = hook.requests[0]["json"]
        check(hook.requests[0]["sig_ok"] and body["data"]["drill"] is True and "[DRILL]" in body["data"]["text"],
              "the webhook message is marked DRILL: %r" % body)
        with open(log) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        check(len(lines) == 1 and "[DRILL]" in lines[0]["text"] and lines[0]["drill"] is True,
              "the file notifier got the DRILL-marked message: %r" % lines)
        start = env.record("run.started", run="loud")["data"]
        check(start["live_notify"] is True, "run.started records live_notify")
    s.no_canary()


# ------------------------------------------------------ runs, live

def test_run_pages_acknowledges_and_resolves_one_incident(env):
    """A live run: tier 1 (Slack) at start; a person answers; a step fails
    with on_failure = "escalate" and pages PagerDuty and Opsgenie (tier 2);
    the next answer acknowledges them (the first answer came before they
    were paged); the run succeeds and resolves them: one dedup_key / alias
    for the whole run, in that order."""
    s = Suite(env)
    with Receiver(body="ok") as slack, \
            Receiver(status=202, body='{"status":"success","message":"Event processed"}', limit=10) as pd, \
            Receiver(status=202, body='{"result":"Request will be processed"}', limit=10) as og:
        s.secret_url("SLACK_URL", slack.url)
        s.config('  slack = { type = "slack", url = secret "SLACK_URL" },\n'
                 '  pd = { type = "pagerduty", routing_key = secret "PD_KEY", url = "%s" },\n'
                 '  og = { type = "opsgenie", api_key = secret "OG_KEY", api_url = "http://127.0.0.1:%d" },'
                 % (pd.url, og.port))
        pb = env.playbook('''
            step "look" { phase = "detection", manual = "Look at the EDR" },
            step "isolate" { phase = "containment", on_failure = "escalate",
              run = function(ctx) ctx.fail("the EDR refused") end },
            step "by-hand" { phase = "containment", manual = "Pull the cable" },
        ''', header='''severity = "high", phases = { "detection", "containment" },
            escalation = { { notify = { "slack" } }, { after = "1h", notify = { "pd", "og" } } }''')
        r = s.irp("run", pb, "--state-dir", env.state, "--run-id", "r1", stdin="done: seen\ndone: unplugged\n")
        check(r.code == 0, "the run succeeds", r)
        check(slack.count() == 1 and pd.count() == 3 and og.count() == 3,
              "1 Slack message, 3 PagerDuty events, 3 Opsgenie calls (%d, %d, %d)"
              % (slack.count(), pd.count(), og.count()))
        events = [q["json"] for q in pd.requests]
        check([e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"],
              "trigger, acknowledge, resolve: %r" % [e["event_action"] for e in events])
        check({e["dedup_key"] for e in events} == {"irp-r1"}, "one dedup_key for the run")
        p = events[0]["payload"]
        check(p["severity"] == "error" and "isolate" in p["summary"] and p["custom_details"]["step"] == "isolate"
              and p["custom_details"]["phase"] == "containment" and p["custom_details"]["operator"] == "tester",
              "the trigger names step, phase, operator: %r" % p)
        paths = [q["path"] for q in og.requests]
        check(paths == ["/v2/alerts", "/v2/alerts/irp-r1/acknowledge?identifierType=alias",
                        "/v2/alerts/irp-r1/close?identifierType=alias"], "opsgenie create, ack, close: %r" % paths)
        check(og.requests[0]["json"]["alias"] == "irp-r1", "alias is the run's")
    esc = [x for x in env.journal() if x["type"] == "escalation.triggered"]
    check([(x["data"]["tier"], x["data"]["targets"]) for x in esc] == [(1, ["slack"]), (2, ["pd", "og"])],
          "tiers and targets journaled: %r" % esc)
    types = env.events()
    ack = [i for i, x in enumerate(env.journal()) if x["type"] == "notify.queued"
           and x["data"].get("action") == "acknowledge"]
    answered = [i for i, t in enumerate(types) if t == "manual.answered"]
    check(len(ack) == 2 and ack[0] > answered[0], "acknowledged at the second answer, after the page")
    check(s.queued() == [], "outbox empty")
    s.no_canary()


def test_unknown_notifier_in_a_tier_stops_the_run_before_it_starts(env):
    s = Suite(env)
    with Receiver(body="ok", limit=5) as slack:
        s.secret_url("SLACK_URL", slack.url)
        s.config('  ["slack-ir"] = { type = "slack", url = secret "SLACK_URL" },')
        pb = env.playbook('step "a" { run = function(ctx) return 1 end },',
                          header='escalation = { { notify = { "slack-ir" } }, { after = "5m", notify = { "slak-ir" } } }')
        for cmd in ("run", "drill"):
            r = s.irp(cmd, pb, "--state-dir", env.state, "--run-id", "r-" + cmd)
            check(r.code == 65, "%s refused" % cmd, r)
            check(re.search(r"pb\.lua:1: escalation tier 2 notifies 'slak-ir', which would page nobody: no notifier "
                            r"named 'slak-ir' in \S*irp\.conf\.lua \(did you mean 'slack-ir'\?\)", r.err),
                  "file:line, tier, name and suggestion", r)
            check(not os.path.exists(env.journal_path("r-" + cmd)), "nothing ran: no journal")
        check(slack.count() == 0, "nobody was paged")
    # the embedded default (no configuration) prints every name: nothing to refuse
    os.remove(os.path.join(env.dir, "irp.conf.lua"))
    r = s.irp("run", pb, "--state-dir", env.state, "--run-id", "r-default")
    check(r.code == 0 and ">> notify slack-ir:" in r.out, "stdout answers to any name", r)
    s.no_canary()


def test_slow_endpoint_never_blocks_the_run_and_the_next_run_delivers_leftovers(env):
    """Notifications to an endpoint that takes 1.5 s do not slow the steps
    or the prompt; the run says why it waits at the end; an entry an earlier
    process left in the outbox (endpoint down then) is sent by this run and
    journaled in it, marked queued_by_run."""
    s = Suite(env)
    port = free_port()
    s.secret_url("SOC_URL", "http://127.0.0.1:%d/hook" % port)
    s.config(webhook("soc", ', timeout = "5s"'))
    r = s.test("soc", "--wait", "300ms")
    check(r.code == 69 and len(s.queued()) == 1, "one left while the endpoint is down", r)
    left = s.queued()[0]["id"]
    with Receiver(secret=WHSEC, port=port, delay=1.5, limit=20) as hook:
        pb = env.playbook('''
            step "a" { run = function(ctx) ctx.notify("soc", "one") ctx.notify("soc", "two") return 1 end },
            step "m" { manual = "Answer at once" },
            step "b" { run = function(ctx) ctx.notify("soc", "three") return 1 end },
        ''')
        r = s.irp("run", pb, "--state-dir", env.state, "--run-id", "r1", stdin="done\n")
        check(r.code == 0, "the run succeeds", r)
        fin = env.record("run.finished")["data"]
        check(fin["duration_ms"] < 1000 * SLACK, "the steps never waited for the 1.5 s answers (%d ms)"
              % fin["duration_ms"])
        check("waiting up to" in r.out and "Ctrl-C leaves them in the outbox" in r.out, "the final wait is said", r)
        check(hook.count() == 4 and all(q["sig_ok"] for q in hook.requests), "4 delivered, signed")
        ids = [q["headers"]["webhook-id"] for q in hook.requests]
        check(len(set(ids)) == 4 and left in ids, "the leftover among them, each once")
    sent = [x for x in env.journal() if x["type"] == "notify.sent"]
    check(len(sent) == 4, "4 notify.sent in the run's journal")
    old = [x for x in sent if x["data"]["id"] == left]
    check(len(old) == 1 and old[0]["data"].get("queued_by_run", "").startswith("notify-test-"),
          "the leftover is marked with the process that queued it: %r" % old)
    check(s.queued() == [], "outbox empty")
    s.no_canary()


def test_every_escalation_trigger_is_journaled_with_tier_and_targets(env):
    """ctx.escalate climbs one tier and returns it; an approval waiting past
    its step's timeout climbs the next (the timer runs while the prompt
    waits); at the top the top tier is paged again."""
    s = Suite(env)
    pb = env.playbook('''
        step "triage" { run = function(ctx) return { tier = ctx.escalate("ransom note found") } end },
        step "isolate" { approval = "incident-commander", timeout = "10m", run = function(ctx) return 1 end },
        step "again" { run = function(ctx) return { tier = ctx.escalate("still spreading") } end },
    ''', header='''escalation = { { notify = { "chat" } }, { after = "5h", notify = { "pager" } },
                                  { after = "6h", notify = { "ciso", "chat" } } }''')
    p = subprocess.Popen([IRP, "drill", pb, "--state-dir", env.state, "--run-id", "r1", "--speed", "3000"],
                         cwd=env.dir, env=env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # 10 drill minutes are 200 ms
    out, err = p.communicate("approve: IC on the bridge\n", timeout=20 * SLACK)
    check(p.returncode == 0, "drill: %s %s" % (out, err))
    esc = [x for x in env.journal() if x["type"] == "escalation.triggered"]
    got = [(x["data"]["tier"], x["data"]["targets"], x.get("step")) for x in esc]
    check(got[:3] == [(1, ["chat"], None), (2, ["pager"], "triage"), (3, ["ciso", "chat"], "isolate")],
          "start, ctx.escalate, approval wait: %r" % got)
    check(esc[1]["data"]["reason"] == "ransom note found", "ctx.escalate's reason")
    check("has waited" in esc[2]["data"]["reason"] and "approval by incident-commander" in esc[2]["data"]["reason"],
          "the wait is the reason: %r" % esc[2]["data"])
    check(got[-1] == (3, ["ciso", "chat"], "again"), "at the top, the top tier again: %r" % got)
    check(env.record("step.succeeded", "triage")["data"]["result"] == {"tier": 2}, "ctx.escalate returns the tier")
    queued = [x for x in env.journal() if x["type"] == "notify.queued"]
    check(len(queued) == sum(len(x["data"]["targets"]) for x in esc), "one notification per target of each tier")


def test_live_drill_resolves_its_pages_however_it_ends(env):
    """A drill with --live-notify pages PagerDuty for real, marked [DRILL];
    when the exercise ends, failed or not, that incident is resolved: an
    exercise never leaves a real page open. A failed live run keeps its
    incident open."""
    s = Suite(env)
    with Receiver(status=202, body='{"status":"success"}', limit=10) as pd:
        s.config('  pd = { type = "pagerduty", routing_key = secret "PD_KEY", url = "%s" },' % pd.url)
        pb = env.playbook('step "a" { run = function(ctx) ctx.fail("the restore failed") end },',
                          header='escalation = { { notify = { "pd" } } }')
        r = s.irp("drill", pb, "--state-dir", env.state, "--run-id", "d1", "--live-notify")
        check(r.code == 1, "the drill fails", r)
        events = [q["json"] for q in pd.requests]
        check([e["event_action"] for e in events] == ["trigger", "resolve"], "trigger then resolve: %r" % events)
        check(events[0]["payload"]["summary"].startswith("[DRILL]") and events[1]["dedup_key"] == "irp-d1",
              "marked DRILL, one key")
        r = s.irp("run", pb, "--state-dir", env.state, "--run-id", "r1")
        check(r.code == 1, "the live run fails", r)
        check(pd.count() == 3 and pd.requests[2]["json"]["event_action"] == "trigger",
              "a failed live run leaves its incident open for the people on it")
    s.no_canary()
