"""receiver.py - local HTTP(S) endpoints for irp's notification tests and
benchmark: each Receiver listens on 127.0.0.1 (a free port), records every
request (path, headers, body, parsed JSON, arrival time), verifies Standard
Webhooks signatures when given the secret, and answers as told: a fixed
status/body, a delay, Retry-After, or a function of the request number.
Request counts are bounded: past `limit` requests the receiver answers 503
and records the overflow, so a retry storm fails the test instead of
running forever. Every test stops its receivers (stop(), or `with`).

Also: make_self_signed(dir) writes a throw-away certificate and key with
the openssl command (for the "TLS must be verified" test).
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def webhook_signature(secret, msg_id, timestamp, body):
    """The Standard Webhooks v1 signature, computed independently of irp."""
    key = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(key + "=" * (-len(key) % 4))
    mac = hmac.new(key, ("%s.%s." % (msg_id, timestamp)).encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 256  # many concurrent connections: no SYN drops


class Receiver:
    def __init__(self, status=200, body=b"", delay=0.0, headers=None, respond=None, secret=None,
                 limit=1000, certfile=None, keyfile=None, port=0):
        self.status, self.body, self.delay = status, body, delay
        self.headers = headers or {}
        self.respond = respond          # fn(index, request) -> (status, headers, body, delay)
        self.secret = secret
        self.limit = limit
        self.requests = []
        self.overflow = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                receiver._handle(self, raw)

            do_PUT = do_POST

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d/hook" % (self.scheme, self.port)

    def _handle(self, handler, raw):
        try:
            parsed = json.loads(raw.decode()) if raw else None
        except ValueError:
            parsed = None
        req = {"path": handler.path, "headers": {k.lower(): v for k, v in handler.headers.items()},
               "body": raw, "json": parsed, "time": time.monotonic()}
        if self.secret is not None:
            h = req["headers"]
            want = webhook_signature(self.secret, h.get("webhook-id", ""), h.get("webhook-timestamp", ""), raw)
            got = h.get("webhook-signature", "").split(" ")
            req["sig_ok"] = any(hmac.compare_digest(want, g) for g in got)
        with self.lock:
            index = len(self.requests)
            over = index >= self.limit
            if over:
                self.overflow += 1
            else:
                self.requests.append(req)
        if over:
            status, headers, body, delay = 503, {}, b"over the test's request limit", 0
        elif self.respond:
            status, headers, body, delay = self.respond(index, req)
        else:
            status, headers, body, delay = self.status, self.headers, self.body, self.delay
        if delay:
            time.sleep(delay)
        if isinstance(body, str):
            body = body.encode()
        try:
            handler.send_response(status)
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout): that is what some tests want

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait_for(self, n, timeout=10.0):
        end = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.count()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    """A port nothing listens on (for the "endpoint down" tests)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_self_signed(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key
