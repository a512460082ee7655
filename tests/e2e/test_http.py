"""End-to-end tests of ctx.http in live runs, against a real HTTP server on
127.0.0.1 started by the test: methods, bodies, secrets in headers (sent,
never journaled), errors, no redirects, the step deadline."""
import http.server
import json
import threading
from harness import canary as make_canary, check


class Handler(http.server.BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *a):
        pass

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        Handler.seen.append({"method": self.command, "path": self.path, "body": body,
                             "token": self.headers.get("X-Token")})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            return
        if self.path == "/slow":
            import time
            time.sleep(3)
        out = json.dumps({"method": self.command, "body": body}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        try:
            self.wfile.write(out)
        except BrokenPipeError:
            pass  # the /slow client gave up at its deadline, as it should

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


def serve():
    Handler.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


def test_http_methods_bodies_and_secret_headers(env):
    srv, base = serve()
    try:
        canary = make_canary("http-token")
        pb = env.playbook('''
            step "get" { run = function(ctx)
                local r = ctx.http{ method = "GET", url = "%s/users/7", headers = { ["X-Token"] = ctx.secret("IRP_HTTP_TOKEN") } }
                return { status = r.status, body = r.body, ctype = r.headers["content-type"] }
              end },
            step "post" { run = function(ctx)
                local r = ctx.http{ method = "PATCH", url = "%s/users/7", json = { active = false } }
                return { status = r.status, body = r.body }
              end },
        ''' % (base, base))
        r = env.run(pb, env={"IRP_HTTP_TOKEN": canary})
        check(r.code == 0, "run", r)
        get = env.record("step.succeeded", "get")["data"]["result"]
        check(get["status"] == 200 and get["ctype"] == "application/json", "GET answer: %r" % get)
        check(Handler.seen[0]["token"] == canary, "the secret header reached the server")
        patch = env.record("step.succeeded", "post")["data"]["result"]
        check(json.loads(json.loads(patch["body"])["body"]) == {"active": False}, "json body: %r" % patch)
        check(Handler.seen[1]["method"] == "PATCH", "PATCH sent")
        check(env.record("step.http", "get")["data"]["status"] == 200, "step.http journaled")
        with open(env.journal_path()) as f:
            check(canary not in f.read(), "secret in the journal")
        check(canary not in r.out + r.err, "secret on screen", r)
    finally:
        srv.shutdown()


def test_http_errors_redirects_and_deadline(env):
    srv, base = serve()
    try:
        pb = env.playbook('''
            step "redirect" { run = function(ctx) return ctx.http{ url = "%s/redirect" }.status end },
            step "refused" { on_failure = "continue", run = function(ctx) return ctx.http{ url = "http://127.0.0.1:1/" }.status end },
            step "slow" { timeout = "1s", on_failure = "continue", run = function(ctx) return ctx.http{ url = "%s/slow" }.status end },
            step "scheme" { on_failure = "continue", run = function(ctx) return ctx.http{ url = "file:///etc/passwd" }.status end },
        ''' % (base, base))
        r = env.run(pb)
        check(r.code == 0, "run", r)
        check(env.record("step.succeeded", "redirect")["data"]["result"] == 302, "302 returned, not followed")
        check(len([s for s in Handler.seen if s["path"] == "/elsewhere"]) == 0, "redirect not followed")
        check("127.0.0.1:1" in env.record("step.failed", "refused")["data"]["reason"], "connection refused named")
        slow = env.record("step.failed", "slow")["data"]
        check(slow["duration_ms"] < 2500, "the request did not outlive its step: %r" % slow)
        check("http" in env.record("step.failed", "scheme")["data"]["reason"], "file:// refused")
    finally:
        srv.shutdown()


def test_drill_http_sends_nothing_and_answers_like_live(env):
    """In a drill no request leaves irp, even to a server that is listening;
    the simulated answer has the live answer's fields (header names in
    lower case, as live), and a request a live run refuses is refused."""
    srv, base = serve()
    try:
        pb = env.playbook('''
            step "get" { run = function(ctx)
                local r = ctx.http{ method = "post", url = "%s/users/7", json = { active = false } }
                local keys = {}
                for k in pairs(r) do keys[#keys + 1] = k end
                table.sort(keys)
                return { keys = table.concat(keys, ","), ctype = r.headers["content-type"], status = r.status }
              end,
              drill = { status = 201, headers = { ["Content-Type"] = "application/json" }, json = { ok = true } } },
            step "method" { on_failure = "continue", run = function(ctx)
                return ctx.http{ method = "FROB", url = "%s/" }.status end },
            step "scheme" { on_failure = "continue", run = function(ctx)
                return ctx.http{ url = "ftp://127.0.0.1/" }.status end },
        ''' % (base, base))
        r = env.run(pb, "--run-id", "live")
        check(r.code == 0, "live run", r)
        live = env.record("step.succeeded", "get", run="live")["data"]["result"]
        check(len(Handler.seen) == 1, "the live run sent its one request")
        Handler.seen = []
        r = env.drill(pb)
        check(r.code == 0, "drill", r)
        check(Handler.seen == [], "no request reached the server in the drill: %r" % Handler.seen)
        drill = env.record("step.succeeded", "get")["data"]["result"]
        check(drill["keys"] == live["keys"], "the simulated answer has the live fields: %r vs %r" % (drill, live))
        check(drill["ctype"] == "application/json" and drill["status"] == 201, "lower-case header names: %r" % drill)
        check(env.record("step.http", "get")["data"]["method"] == "POST", "the method journaled as live does")
        for step, why in (("method", "method must be GET"), ("scheme", "must start with http://")):
            for run in ("live", "r1"):
                failed = env.record("step.failed", step, run=run)
                check(failed and why in failed["data"]["reason"], "%s refused in %s: %r" % (step, run, failed))
    finally:
        srv.shutdown()
