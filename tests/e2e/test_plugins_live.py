"""End-to-end tests of the shipped plugins' live paths, each against a real
peer this machine can run, started by the test and stopped after it:
evidence collection of real files; PostgreSQL promote and pg_basebackup
against a primary and a standby; Patroni failover against an etcd and two
Patroni members; nftables and iptables inside a fresh network namespace;
blockip and isolate over ssh to a throwaway sshd on 127.0.0.1 in a network
namespace; blockip, evidence and postgres over ssh as a non-root user with
sudo, the user and its sudoers rule existing only in the test's mount
namespace; the HTTP plugins against a local stand-in server. Each is skipped
(and passes, saying so) where its peer's Debian package is missing."""
import contextlib
import ctypes
import glob
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import harness
from harness import canary, check, no_process_with
from receiver import free_port
from test_plugins import clean, succeeded


def test_evidence_live_files_and_commands(env):
    clean(env)
    text = env.write("auth\\1.log", "Nov 25 03:12:01 web-07 sshd[812]: Accepted publickey for deploy\n")
    binary = os.path.join(env.dir, "blob.bin")
    with open(binary, "wb") as f:
        f.write(bytes(range(256)) * 8)
    pb = env.write("pb.lua", '''local evidence = require "evidence"
return playbook { id = "t", title = "T", steps = {
  evidence.files { id = "text", files = { %s } },
  evidence.files { id = "b64", files = { "%s" }, encoding = "base64" },
  evidence.commands { id = "cmds", commands = { { name = "echo.txt", argv = { "echo", "hello" } } } },
  evidence.files { id = "bad", files = { "%s", "%s/missing" }, on_failure = "continue" },
} }
''' % (json.dumps(text), binary, binary, env.dir))  # a backslash in the name: sha256sum -- FILE escapes it
    r = env.run(pb, "--yes")
    check(r.code == 0, "the run ends", r)
    item = succeeded(env, "text")["items"][0]
    want = hashlib.sha256(open(text, "rb").read()).hexdigest()
    check(item["source_sha256"] == want and item["sha256"] == want, "text copy is verbatim")
    check(hashlib.sha256(open(item["path"], "rb").read()).hexdigest() == want, "artifact file hash")
    b = succeeded(env, "b64")["items"][0]
    import base64
    check(base64.b64decode(open(b["path"], "rb").read()) == open(binary, "rb").read(), "base64 round trip")
    check(b["source_sha256"] == hashlib.sha256(open(binary, "rb").read()).hexdigest(), "source hash")
    check(open(succeeded(env, "cmds")["items"][0]["path"]).read() == "hello\n", "command output stored")
    failed = env.record("step.failed", "bad")["data"]
    check("differs from the source" in json.dumps(failed) and "missing" in json.dumps(failed),
          "binary-as-text and missing file are reported: %r" % failed)


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return os.path.dirname(found[-1])


@contextlib.contextmanager
def pg_primary_and_standby(b):
    """A PostgreSQL primary (port 55432) and a streaming standby of it (port
    55433), run as the postgres user, listening only on unix sockets in a
    fresh temporary directory (d). Yields (d, runuser argv prefix); stops
    every server started in d (also those a test started there) and removes
    d afterwards."""
    d = tempfile.mkdtemp(prefix="irp-pg-")
    os.chmod(d, 0o755)
    shutil.chown(d, "postgres")
    u = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(u + [b + "/initdb", "-D", d + "/primary", "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True, timeout=120)
        with open(d + "/primary/postgresql.conf", "a") as f:
            f.write("listen_addresses=''\nunix_socket_directories='%s'\nport=55432\n" % d)
        subprocess.run(u + [b + "/pg_ctl", "start", "-D", d + "/primary", "-w", "-l", d + "/p.log"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(u + [b + "/pg_basebackup", "-d", "host=%s port=55432 user=postgres" % d, "-D",
                            d + "/standby", "-X", "stream", "-c", "fast", "-R"], check=True, capture_output=True,
                       timeout=120)
        with open(d + "/standby/postgresql.conf", "a") as f:
            f.write("port=55433\n")
        subprocess.run(u + [b + "/pg_ctl", "start", "-D", d + "/standby", "-w", "-l", d + "/s.log"],
                       check=True, capture_output=True, timeout=120)
        yield d, u
    finally:
        for name in sorted(os.listdir(d)):
            if os.path.exists(os.path.join(d, name, "postmaster.pid")):
                subprocess.run(u + [b + "/pg_ctl", "stop", "-D", os.path.join(d, name), "-m", "immediate"],
                               capture_output=True, timeout=60)
        shutil.rmtree(d, ignore_errors=True)


PG_PB = '''local postgres = require "postgres"
%(prelude)s
return playbook { id = "t", title = "T", inputs = { dir = { required = true }, %(inputs)s },
  steps = {
    postgres.basebackup { id = "restore", source = "host={{dir}} port=55432 user=postgres",
                          pgdata = "{{dir}}/restored", bin_dir = "%(bin)s", start = true, port = 55434%(more)s },
    postgres.promote { id = "promote", pgdata = "{{dir}}/standby", bin_dir = "%(bin)s",
                       conninfo = "host={{dir}} port=55433 user=postgres"%(more)s },
  } }
'''


def check_pg_restored_and_promoted(env, d, u, b, run="r1"):
    check(env.record("step.succeeded", "promote", run=run)["data"]["result"]["in_recovery"] is False,
          "the standby is a primary now")
    q = subprocess.run(u + [b + "/psql", "-X", "-A", "-t", "-d", "host=%s port=55433 user=postgres" % d,
                            "-c", "select pg_is_in_recovery()"], capture_output=True, text=True, timeout=60)
    check(q.stdout.strip() == "f", "the promoted standby is out of recovery: %r" % q.stdout)
    q = subprocess.run(u + [b + "/psql", "-X", "-A", "-t", "-d", "host=%s port=55434 user=postgres" % d,
                            "-c", "select pg_is_in_recovery()"], capture_output=True, text=True, timeout=60)
    check(q.stdout.strip() == "t", "the restored copy runs as a standby: %r" % q.stdout)
    check(env.record("step.succeeded", "restore", run=run)["data"]["result"]["started"] is True, "restore result")


def test_postgres_live_promote_and_basebackup(env):
    """A primary and a standby on unix sockets in a temporary directory,
    run as the postgres user; skipped (passes) without the server binaries."""
    clean(env)
    b = pg_bin()
    if not b:
        print("       (skipped: no PostgreSQL server binaries, or not root)")
        return
    with pg_primary_and_standby(b) as (d, u):
        pb = env.write("pb.lua", PG_PB % {"prelude": "", "inputs": "", "bin": b, "more": ""})
        r = env.run(pb, "--yes", "-v", "dir=" + d, timeout=120)
        check(r.code == 0, "live restore and promote succeed", r)
        check_pg_restored_and_promoted(env, d, u, b)


# ---------------------------------------------------------------- live Patroni

PATRONI_CONF = """scope: irp-e2e
name: %(name)s
restapi:
  listen: 127.0.0.1:%(rest)d
  connect_address: 127.0.0.1:%(rest)d
etcd3:
  hosts: 127.0.0.1:%(etcd)d
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
  initdb:
  - encoding: UTF8
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:%(pg)d
  connect_address: 127.0.0.1:%(pg)d
  data_dir: %(dir)s/%(name)s
  bin_dir: %(bin)s
  pgpass: %(dir)s/pgpass-%(name)s
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: '%(dir)s'
"""


LIBC = ctypes.CDLL(None, use_errno=True)


def dying_with_parent():
    """preexec_fn: the kernel sends SIGKILL when the test process dies, so a
    server never outlives a killed test (PR_SET_PDEATHSIG). Nothing is
    imported or looked up in the child: it runs between fork and exec."""
    LIBC.prctl(1, signal.SIGKILL)


def as_user_dying_with_parent(user):
    """A preexec_fn: become user (no supplementary groups), then
    dying_with_parent (a change of user clears PR_SET_PDEATHSIG)."""
    pw = pwd.getpwnam(user)

    def become():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        dying_with_parent()
    return become


def patroni_list(conf):
    r = subprocess.run(["patronictl", "-c", conf, "list", "-f", "json"], capture_output=True, text=True, timeout=30)
    try:
        return {m["Member"]: m for m in json.loads(r.stdout)}
    except ValueError:
        return {}


def wait_for(what, cond, seconds):
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v:
            return v
        check(time.monotonic() < deadline, "%s within %d s" % (what, seconds))
        time.sleep(0.3)


def test_postgres_live_patroni_failover(env):
    """postgres.patroni_failover for real: an etcd and two Patroni members
    (each with its PostgreSQL) on 127.0.0.1, started by the test; irp fails
    over to the replica, waits until it leads, records the old leader and the
    new timeline; a row written before is read on the new leader; a second
    run finds the candidate leading and does not fail over again; with the
    cluster in maintenance mode and the leader's PostgreSQL lost, irp fails
    over back to the other member; a candidate that is not a member fails
    the step by name. Skipped (passes) without
    PostgreSQL server binaries, patroni or etcd."""
    clean(env)
    b = pg_bin()
    if not b or not shutil.which("patroni") or not shutil.which("patronictl") or not shutil.which("etcd"):
        print("       (skipped: needs PostgreSQL server binaries, patroni and etcd-server, as root)")
        return
    d = tempfile.mkdtemp(prefix="irp-patroni-")
    os.chmod(d, 0o755)
    shutil.chown(d, "postgres")
    procs = []
    etcd_client, etcd_peer = free_port(), free_port()
    try:
        procs.append(subprocess.Popen(
            ["etcd", "--name", "irp-e2e", "--data-dir", d + "/etcd",
             "--listen-client-urls", "http://127.0.0.1:%d" % etcd_client,
             "--advertise-client-urls", "http://127.0.0.1:%d" % etcd_client,
             "--listen-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % etcd_peer,
             "--initial-cluster", "irp-e2e=http://127.0.0.1:%d" % etcd_peer],
            stdin=subprocess.DEVNULL, stdout=open(d + "/etcd.log", "w"), stderr=subprocess.STDOUT,
            preexec_fn=dying_with_parent))
        conf, port = {}, {}
        for name in ("pg-1", "pg-2"):
            port[name] = free_port()
            conf[name] = os.path.join(d, name + ".yml")
            with open(conf[name], "w") as f:
                f.write(PATRONI_CONF % {"name": name, "rest": free_port(), "etcd": etcd_client, "pg": port[name],
                                        "dir": d, "bin": b})
            procs.append(subprocess.Popen(["patroni", conf[name]], stdin=subprocess.DEVNULL,
                                          stdout=open("%s/patroni-%s.log" % (d, name), "w"),
                                          stderr=subprocess.STDOUT, cwd=d,
                                          preexec_fn=as_user_dying_with_parent("postgres")))
            if name == "pg-1":  # the first to bootstrap leads
                wait_for("pg-1 leads", lambda: patroni_list(conf["pg-1"]).get("pg-1", {}).get("State") == "running",
                         90)
        wait_for("pg-2 replicates", lambda: patroni_list(conf["pg-1"]).get("pg-2", {}).get("State")
                 in ("running", "streaming"), 90)

        def sql(member, q):
            return subprocess.run([b + "/psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(port[member]),
                                   "-U", "postgres", "-d", "postgres", "-c", q],
                                  capture_output=True, text=True, timeout=30).stdout.strip()
        sql("pg-1", "create table orders(id int); insert into orders values (42)")
        wait_for("the row reaches pg-2", lambda: sql("pg-2", "select id from orders") == "42", 30)

        pb = env.write("pb.lua", '''local postgres = require "postgres"
return playbook { id = "t", title = "T", inputs = { conf = { required = true }, to = { default = "pg-2" } },
  steps = {
    postgres.patroni_failover { id = "failover", config = "{{conf}}", cluster = "irp-e2e", candidate = "{{to}}" },
  } }
''')
        r = env.run(pb, "--yes", "-v", "conf=" + conf["pg-1"], timeout=240)
        check(r.code == 0, "the live Patroni failover succeeds (patroni log: %s)"
              % open(d + "/patroni-pg-2.log").read()[-2000:], r)
        res = succeeded(env, "failover")
        check(res["leader"] == "pg-2" and res["previous"] == "pg-1" and res["failed_over"] is True
              and res["timeline"] >= 2, "the result names the new and the old leader and the timeline: %r" % res)
        cmds = [x["data"]["command"] for x in env.journal() if x["type"] == "step.exec"]
        check(cmds[0] == "patronictl -c %s list irp-e2e -f json" % conf["pg-1"]
              and cmds[1] == "patronictl -c %s failover irp-e2e --candidate pg-2 --force" % conf["pg-1"]
              and all(c == cmds[0] for c in cmds[2:]) and len(cmds) >= 3, "list, failover, list: %r" % cmds)
        members = patroni_list(conf["pg-2"])
        check(members["pg-2"]["Role"] == "Leader", "Patroni says pg-2 leads: %r" % members)
        check(sql("pg-2", "select pg_is_in_recovery()") == "f", "pg-2 is a primary now")
        check(sql("pg-2", "insert into orders values (43) returning id") == "43", "and takes writes")
        check(sql("pg-2", "select count(*) from orders") == "2", "the row written before the failover is there")

        # Again (a retry, a resume, or Patroni did it itself): no second failover.
        r = env.irp("run", pb, "--yes", "--state-dir", env.state, "--run-id", "r2", "-v", "conf=" + conf["pg-2"],
                    timeout=120)
        check(r.code == 0, "the second run succeeds", r)
        res = env.record("step.succeeded", "failover", run="r2")["data"]["result"]
        check(res["failed_over"] is False and res["leader"] == "pg-2", "no failover the second time: %r" % res)
        check(not any("failover" in x["data"]["command"] for x in env.journal("r2") if x["type"] == "step.exec"),
              "no patronictl failover was run")

        # The disaster this step is for: the leader's PostgreSQL is lost while
        # the cluster is in maintenance mode, so Patroni does not fail over by
        # itself (db-failover.lua's case). irp fails over to the replica.
        subprocess.run(["patronictl", "-c", conf["pg-1"], "pause", "irp-e2e", "--wait"], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(["runuser", "-u", "postgres", "--", b + "/pg_ctl", "stop", "-D", d + "/pg-2", "-m",
                        "immediate"], check=True, capture_output=True, timeout=60)
        wait_for("pg-2 is seen stopped", lambda: patroni_list(conf["pg-1"]).get("pg-2", {}).get("State")
                 not in ("running", "streaming"), 30)
        r = env.irp("run", pb, "--yes", "--state-dir", env.state, "--run-id", "lost", "-v", "conf=" + conf["pg-1"],
                    "-v", "to=pg-1", timeout=240)
        check(r.code == 0, "the failover from a lost leader succeeds", r)
        res = env.record("step.succeeded", "failover", run="lost")["data"]["result"]
        check(res["leader"] == "pg-1" and res["previous"] == "none" and res["failed_over"] is True
              and res["timeline"] >= 3, "pg-1 leads on a new timeline (no member led before): %r" % res)
        check(sql("pg-1", "select pg_is_in_recovery()") == "f", "pg-1 is a primary")
        check(sql("pg-1", "insert into orders values (44) returning id") == "44", "and takes writes")
        check(sql("pg-1", "select count(*) from orders") == "3", "with every row written before")

        r = env.irp("run", pb, "--yes", "--state-dir", env.state, "--run-id", "r3", "-v", "conf=" + conf["pg-1"],
                    "-v", "to=pg-9", timeout=120)
        check(r.code == 1, "a candidate that is not a member fails the run", r)
        reason = env.record("step.failed", "failover", run="r3")["data"]["reason"]
        check("pg-9 is not a member of irp-e2e" in reason and "pg-1 Leader/running" in reason,
              "the reason names the candidate and the members: %r" % reason)
    finally:
        for p in reversed(procs):  # Patroni members stop their PostgreSQL, then etcd
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name in ("pg-1", "pg-2"):
            if os.path.exists("%s/%s/postmaster.pid" % (d, name)):
                subprocess.run(["runuser", "-u", "postgres", "--", b + "/pg_ctl", "stop", "-D", "%s/%s" % (d, name),
                                "-m", "immediate"], capture_output=True, timeout=60)
        shutil.rmtree(d, ignore_errors=True)


PROBE = '''import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.5", 9))
    print("probe: connected")
except Exception as e:
    print("probe: " + type(e).__name__)
'''


def test_nftables_live_in_a_network_namespace(env):
    """blockip.firewall and isolate.firewall/release for real, with nft in a
    fresh network namespace (unshare -n); skipped (passes) without nft."""
    clean(env)
    import harness
    nft = shutil.which("nft")
    if not nft or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("       (skipped: no nft, or no network namespaces here)")
        return
    probe = env.write("probe.py", PROBE)
    pb = env.write("pb.lua", '''local blockip = require "blockip"
local isolate = require "isolate"
return playbook { id = "t", title = "T", steps = {
  blockip.firewall { id = "range", host = "local", addr = "203.0.113.0/24" },
  blockip.firewall { id = "inside", host = "local", addr = "203.0.113.7" },
  blockip.firewall { id = "v6", host = "local", addr = "2001:db8::/32" },
  blockip.firewall { id = "lo5", host = "local", addr = "127.0.0.5" },
  isolate.firewall { id = "iso", host = "local", allow = { "10.0.0.5", "2001:db8::5" } },
  isolate.release { id = "release", host = "local" },
} }
''')
    script = ('ip link set lo up; python3 {probe}; {irp} run {pb} --yes --state-dir {st} --run-id r1; '
              'echo "irp-exit=$?"; python3 {probe}; nft list ruleset').format(
                  probe=probe, irp=os.path.abspath(harness.IRP), pb=pb, st=env.state)
    p = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                       env=env.env, cwd=env.dir, timeout=60 * harness.SLACK)
    out = p.stdout
    check("irp-exit=0" in out, "the live run succeeds", p)
    check(out.count("probe: ConnectionRefusedError") == 1 and "probe: TimeoutError" in out,
          "127.0.0.5 answered before the block and is dropped after it", p)
    check("elements = { 127.0.0.5, 203.0.113.0/24 }" in out or
          ("203.0.113.0/24" in out and "127.0.0.5" in out), "the set holds the ranges", p)
    check("irp_isolation" not in out.split("irp-exit=0")[1], "the isolation table was released", p)
    check("policy drop" in open(succeeded(env, "iso") and
                                env.record("artifact.stored", "iso")["data"]["path"]).read(),
          "the isolation rules were read back and stored")


def test_iptables_live_in_a_network_namespace(env):
    """The iptables paths of blockip and isolate for real (IPv4 and IPv6,
    run twice: no duplicate rules); skipped (passes) without iptables."""
    clean(env)
    import harness
    if not shutil.which("iptables") or not shutil.which("ip6tables") or \
            subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("       (skipped: no iptables, or no network namespaces here)")
        return
    probe = env.write("probe.py", PROBE)
    pb = env.write("pb.lua", '''local blockip = require "blockip"
local isolate = require "isolate"
return playbook { id = "t", title = "T", steps = {
  blockip.firewall { id = "lo5", host = "local", addr = "127.0.0.5", method = "iptables" },
  blockip.firewall { id = "lo5-again", host = "local", addr = "127.0.0.5", method = "iptables" },
  blockip.firewall { id = "v6", host = "local", addr = "2001:db8::/32", method = "iptables" },
  isolate.firewall { id = "iso", host = "local", allow = { "10.0.0.5", "2001:db8::5" }, method = "iptables" },
  isolate.firewall { id = "iso2", host = "local", allow = { "10.0.0.6", "2001:db8::6" }, method = "iptables" },
} }
''')
    script = ('ip link set lo up; python3 {probe}; {irp} run {pb} --yes --state-dir {st} --run-id r1; '
              'echo "irp-exit=$?"; iptables -S; ip6tables -S; echo "-- after isolation"; python3 {probe}').format(
                  probe=probe, irp=os.path.abspath(harness.IRP), pb=pb, st=env.state)
    p = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                       env=env.env, cwd=env.dir, timeout=60 * harness.SLACK)
    out = p.stdout
    check("irp-exit=0" in out, "the live run succeeds", p)
    check(out.count("-A INPUT -s 127.0.0.5/32 -j DROP") == 1, "one block rule, even when run twice", p)
    check("-A INPUT -s 2001:db8::/32 -j DROP" in out, "IPv6 range blocked with ip6tables", p)
    check("-A IRP_ISOLATE -s 10.0.0.6/32 -j ACCEPT" in out and "10.0.0.5/32" not in out,
          "the second isolation replaced the allow list", p)
    check("-A IRP_ISOLATE -s 2001:db8::6/128 -j ACCEPT" in out, "IPv6 isolated too, allow list kept", p)
    check(out.count("-A OUTPUT -j IRP_ISOLATE") == 2, "hooked once per family", p)


# ---------------------------------------------------------------- live HTTP

class FakeApis:
    """One local HTTP server standing in for a SCIM directory, an EDR, a
    ticket system, a firewall API, a status page and a webhook: stateful
    enough that each plugin's read-back (GET after PATCH...) is real."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading
        self.requests = []
        self.users = {"2819c223": {"id": "2819c223", "userName": "bjensen", "active": True}}
        self.sessions = {"2819c223": 3}
        self.isolated = set()
        self.tickets = {}
        apis = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                apis.requests.append((self.command, self.path, dict(self.headers), body))
                status, out = apis.route(self.command, self.path.split("?")[0], body)
                data = json.dumps(out).encode() if out is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def route(self, method, path, body):
        p = path.strip("/").split("/")
        if p[:2] == ["scim", "Users"] and len(p) >= 3:
            u = self.users.get(p[2])
            if u is None:
                return 404, {"detail": "no such user"}
            if len(p) == 4 and p[3] == "sessions" and method == "DELETE":
                self.sessions[p[2]] = 0
                return 204, None
            if method == "PATCH":
                for op in body["Operations"]:
                    if op["path"] == "active":
                        u["active"] = op["value"]
                return 200, u
            return 200, u
        if p[:2] == ["edr", "hosts"]:
            if len(p) == 4 and p[3] == "isolate" and method == "POST":
                self.isolated.add(p[2])
                return 202, {"job": "77"}
            return 200, {"host": p[2], "isolated": p[2] in self.isolated}
        if p[0] == "tickets":
            if len(p) == 1 and method == "POST":
                t = "INC-%d" % (1000 + len(self.tickets))
                self.tickets[t] = dict(body, id=t, status="open", comments=[])
                return 201, self.tickets[t]
            t = self.tickets.get(p[1])
            if t is None:
                return 404, {"error": "no ticket"}
            if len(p) == 3 and p[2] == "comments":
                t["comments"].append(body["body"])
                return 201, {"ok": True}
            if method == "PATCH":
                t.update(body)
            return 200, t
        if p[0] == "blocklist" and method == "POST":
            return 201, {"id": "rule-1", "address": body["address"]}
        if p[0] == "status" and p[1] == "incidents":
            if method == "POST":
                return 201, {"id": "inc-1", "status": body["status"]}
            return 200, {"id": p[2], "status": body["status"]}
        if p[0] == "hook":
            return 200, {"ok": True}
        return 404, {"error": "no route " + path}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_http_plugins_live_against_local_apis(env):
    clean(env)
    api = FakeApis()
    try:
        pb = env.write("pb.lua", '''local account = require "account"
local isolate = require "isolate"
local ticket = require "ticket"
local blockip = require "blockip"
local statuspage = require "statuspage"
return playbook { id = "t", title = "T", inputs = { api = { required = true } }, steps = {
  ticket.create { id = "open", url = "{{api}}/tickets", summary = "Compromise of web-07", auth_secret = "TICKET_AUTH" },
  isolate.edr { id = "edr", url = "{{api}}/edr", host = "web-07" },
  account.disable { id = "disable", url = "{{api}}/scim", user = "2819c223", auth_secret = "SCIM_AUTH" },
  blockip.api { id = "block", url = "{{api}}/blocklist", addr = "203.0.113.7" },
  statuspage.update { id = "status", url = "{{api}}/status", name = "Logins degraded", status = "investigating",
                      message = "Investigating" },
  statuspage.stakeholders { id = "tell", message = "Ticket {{steps.open.result.ticket}}", webhooks = { "{{api}}/hook" } },
  ticket.update { id = "upd", url = "{{api}}/tickets", ticket = "{{steps.open.result.ticket}}",
                  comment = "contained", status = "resolved" },
} }
''')
        scim_token, ticket_token = canary("scim"), canary("ticket")
        r = env.run(pb, "--yes", "-v", "api=" + api.url,
                    env={"SCIM_AUTH": "Bearer " + scim_token, "TICKET_AUTH": "Bearer " + ticket_token})
        check(r.code == 0, "the live run against the local APIs succeeds", r)
        check(api.users["2819c223"]["active"] is False and api.sessions["2819c223"] == 0,
              "the account is disabled and its sessions revoked")
        check("web-07" in api.isolated, "the EDR isolated the host")
        t = api.tickets["INC-1000"]
        check(t["status"] == "resolved" and t["comments"] == ["contained"] and t["title"] == "Compromise of web-07",
              "the ticket was created, commented and resolved: %r" % t)
        auth = [h.get("Authorization") for (m, path, h, b) in api.requests if path.startswith("/scim")]
        check(auth and all(a == "Bearer " + scim_token for a in auth), "the secret header was sent: %r" % auth)
        check(succeeded(env, "disable")["sessions_revoked"] is True, "result says revoked")
        check(scim_token not in open(env.journal_path()).read(), "the secret is not in the journal")
        patch = [b for (m, path, h, b) in api.requests if m == "PATCH" and path.startswith("/scim")][0]
        check(patch["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "a SCIM PatchOp: %r" % patch)

        # the way back and the follow-ups, live too: new sessions revoked on
        # their own, the account re-enabled, the status-page incident updated
        api.sessions["2819c223"] = 2
        del api.requests[:]
        pb2 = env.write("pb2.lua", '''local account = require "account"
local statuspage = require "statuspage"
return playbook { id = "t2", title = "T2", inputs = { api = { required = true } }, steps = {
  account.revoke_sessions { id = "revoke", url = "{{api}}/scim", user = "2819c223", auth_secret = "SCIM_AUTH" },
  statuspage.update { id = "open", url = "{{api}}/status", name = "Logins degraded", status = "investigating",
                      message = "Investigating" },
  statuspage.update { id = "fixed", url = "{{api}}/status", incident = "{{steps.open.result.incident}}",
                      status = "resolved", message = "Logins work again" },
  account.enable { id = "enable", url = "{{api}}/scim", user = "2819c223", auth_secret = "SCIM_AUTH" },
} }
''')
        r = env.irp("run", pb2, "--state-dir", env.state, "--run-id", "r2", "--yes", "-v", "api=" + api.url,
                    env={"SCIM_AUTH": "Bearer " + scim_token})
        check(r.code == 0, "the recovery run against the local APIs succeeds", r)
        check(api.sessions["2819c223"] == 0 and api.users["2819c223"]["active"] is True,
              "sessions revoked and the account enabled again: %r" % api.users)
        calls = [(m, path) for (m, path, h, b) in api.requests]
        check(calls == [("DELETE", "/scim/Users/2819c223/sessions"), ("POST", "/status/incidents"),
                        ("PATCH", "/status/incidents/inc-1"), ("PATCH", "/scim/Users/2819c223")],
              "the requests made: %r" % calls)
        fixed = [b for (m, path, h, b) in api.requests if path == "/status/incidents/inc-1"][0]
        check(fixed == {"status": "resolved", "body": "Logins work again"}, "the incident update: %r" % fixed)
        check(env.record("step.succeeded", "fixed", run="r2")["data"]["result"]["incident"] == "inc-1",
              "the update names the incident")
    finally:
        api.stop()


# ---------------------------------------------------------------- live ssh

# Runs inside fresh namespaces: a network namespace (unshare -n) always; with
# cfg["private"], a mount namespace too (unshare -n -m), where it first makes
# sure that it is not in the host's mount namespace and that no mount of its
# own propagates anywhere, then mounts a tmpfs on /run (sshd's privilege
# separation directory and sudo's /run/sudo land there) and bind-mounts the
# test's copies of /etc files (cfg["private"]["binds"]), seen only inside.
# Brings lo up, starts a real sshd on 127.0.0.1 (a free port of the
# namespace), runs each phase's irp command and its "show" commands after it,
# and always stops sshd. Both sshd and irp are killed by the kernel if this
# helper dies (PDEATHSIG), so nothing outlives a timeout. Prints one JSON
# object.
SSH_HELPER = r"""import ctypes, json, os, signal, socket, subprocess, sys, time
cfg = json.load(open(sys.argv[1]))
libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def private_mounts(pv):
    if os.readlink("/proc/self/ns/mnt") == pv["host_mntns"]:
        raise SystemExit("refusing to mount: not in a mount namespace of its own")
    with open("/proc/self/mountinfo") as f:
        shared = [l for l in f if " shared:" in l.split(" - ")[0]]
    if shared:
        raise SystemExit("refusing to mount: these mounts propagate to other namespaces: %s" % shared[:3])
    # mount(2) itself: mount(8) would write its utab under the host's /run
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    for src, dst, fstype, flags, data in [("irp-e2e-run", "/run", "tmpfs", 0, "mode=0755,size=16m")] + \
            [(src, dst, None, 4096, None) for src, dst in pv["binds"]]:  # 4096: MS_BIND
        if libc.mount(src.encode(), dst.encode(), fstype and fstype.encode(), flags, data and data.encode()) != 0:
            raise SystemExit("mount %s on %s: %s" % (src, dst, os.strerror(ctypes.get_errno())))
        if dst == "/run":
            os.mkdir("/run/sshd", 0o755)


subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
if cfg.get("private"):
    private_mounts(cfg["private"])
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
conf = cfg["config"]
with open(conf, "w") as f:
    f.write(cfg["sshd_config"].replace("@PORT@", str(port)))
out = {"port": port, "phases": []}
log = open(cfg["log"], "w")
sshd = subprocess.Popen([cfg["sshd"], "-D", "-e", "-f", conf], stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
try:
    deadline = time.monotonic() + 10
    while True:
        if sshd.poll() is not None:
            raise SystemExit("sshd exited with %s" % sshd.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("sshd does not listen on port %d" % port)
            time.sleep(0.05)
    for ph in cfg["phases"]:
        argv = [a.replace("@PORT@", str(port)) for a in ph["argv"]]
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=cfg["timeout"],
                           preexec_fn=die_with_parent, errors="replace")
        elapsed = time.monotonic() - t0
        shown = ""
        for cmd in ph["show"]:
            q = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            shown += "$ %s\n%s%s" % (" ".join(cmd), q.stdout, q.stderr)
        out["phases"].append({"name": ph["name"], "code": p.returncode, "out": p.stdout, "err": p.stderr,
                              "shown": shown, "elapsed": elapsed})
finally:
    sshd.terminate()
    try:
        sshd.wait(5)
    except subprocess.TimeoutExpired:
        sshd.kill()
        sshd.wait()
    log.close()
print(json.dumps(out))
"""

# -F /dev/null and IdentitiesOnly: no ~/.ssh/config, no agent keys
SSH_OPTS_LUA = """local ssh = { "-p", "{{port}}", "-i", "{{key}}", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
              "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-F", "/dev/null" }"""
SSH_INPUTS = "port = { required = true }, key = { required = true }"

SSH_PB = """local blockip = require "blockip"
local isolate = require "isolate"
""" + SSH_OPTS_LUA + """
return playbook { id = "ssh-%(m)s", title = "T", inputs = { """ + SSH_INPUTS + """ },
  steps = {
%(steps)s
  } }
"""

SSH_CONTAIN = """    blockip.firewall { id = "block", host = "root@127.0.0.1", addr = "203.0.113.7", method = "%(m)s",
                       ssh_options = ssh },
    blockip.firewall { id = "block6", host = "root@127.0.0.1", addr = "2001:db8::/32", method = "%(m)s",
                       ssh_options = ssh },
    isolate.firewall { id = "iso", host = "root@127.0.0.1", allow = { "127.0.0.1", "2001:db8::5" },
                       method = "%(m)s", ssh_options = ssh },"""

SSH_RELEASE = """    isolate.release { id = "release", host = "root@127.0.0.1", method = "%(m)s", ssh_options = ssh },"""


def sshd_binary():
    found = shutil.which("sshd")
    if not found and os.access("/usr/sbin/sshd", os.X_OK):
        found = "/usr/sbin/sshd"
    return found


def ssh_live_missing():
    """Why a live ssh test cannot run here: None when it can."""
    if not sshd_binary() or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "no sshd/ssh (openssh-server)"
    if not shutil.which("unshare") or \
            subprocess.run(["unshare", "-n", "-m", "true"], capture_output=True, timeout=30).returncode != 0:
        return "no network or mount namespaces"
    return None


class SshLive:
    """A throwaway sshd for one test: a host key and a client key made by
    ssh-keygen in the test's directory, its configuration (public keys only;
    root may log in or not), and run(), which starts it in SSH_HELPER and runs
    the phases (irp commands) there."""

    def __init__(self, env, authorized_keys, root_login):
        self.env, d = env, env.dir
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "irp-e2e", "-f",
                            os.path.join(d, name)], check=True, capture_output=True, timeout=30)
        self.key = os.path.join(d, "client_key")
        with open(self.key + ".pub") as f:
            self.pubkey = f.read()
        self.conf = os.path.join(d, "sshd_config")
        self.log_path = os.path.join(d, "sshd.log")
        self.sshd_config = "\n".join([
            "ListenAddress 127.0.0.1", "Port @PORT@", "HostKey %s/host_key" % d,
            "PermitRootLogin %s" % ("prohibit-password" if root_login else "no"),
            "AuthorizedKeysFile %s" % authorized_keys,
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "StrictModes no", "UsePAM no",
            "PrintMotd no", "PidFile %s/sshd.pid" % d, ""])
        self.irp = os.path.abspath(harness.IRP)
        self.slack = harness.SLACK
        self.timeout = 60 * harness.SLACK

    def phase(self, name, pb, args=(), show=()):
        """One irp run (run id = name) of playbook pb, with inputs port and key."""
        return {"name": name, "show": [list(c) for c in show],
                "argv": [self.irp, "run", pb, "--yes", "--state-dir", self.env.state, "--run-id", name,
                         "-v", "port=@PORT@", "-v", "key=" + self.key] + list(args)}

    def run(self, phases, binds=()):
        """Runs the phases against sshd in fresh network and mount
        namespaces: its own /run (sshd's privilege separation directory
        there, never on the host's /run) and the bind mounts binds
        (source, target); returns (port, phases by name, sshd's log). Fails
        the test unless the helper ran and sshd is gone."""
        env = self.env
        cfg = {"sshd": sshd_binary(), "config": self.conf, "sshd_config": self.sshd_config, "log": self.log_path,
               "timeout": self.timeout, "phases": phases}
        cfg["private"] = {"host_mntns": os.readlink("/proc/self/ns/mnt"), "binds": list(binds)}
        path = env.write("ssh.json", json.dumps(cfg))
        helper = env.write("ssh_helper.py", SSH_HELPER)
        p = subprocess.run(["unshare", "-n", "-m", "--propagation", "private", sys.executable, helper, path],
                           capture_output=True, text=True, env=env.env, cwd=env.dir,
                           timeout=(60 * len(phases) + 30) * self.slack)
        log = open(self.log_path).read() if os.path.exists(self.log_path) else "none"
        check(p.returncode == 0, "the helper ran (sshd log: %s)" % log, p)
        check(no_process_with(self.conf), "sshd was stopped")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        for x in res["phases"]:  # irp's outputs, for the canary sweep
            env.results.append(harness.Result(x["code"], x["out"], x["err"], x["elapsed"]))
            check("Sanitizer" not in x["err"] and "runtime error:" not in x["err"],
                  "no sanitizer report from irp run %s: %s" % (x["name"], x["err"]))
        return res["port"], {x["name"]: x for x in res["phases"]}, log

    def ssh_prefix(self, port):
        """How every ssh command of the playbooks starts in the journal."""
        return ("ssh -o BatchMode=yes -p %d -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                % (port, self.key))


def test_ssh_live_isolate_and_blockip_against_a_local_sshd(env):
    """isolate.firewall / isolate.release and blockip.firewall over ssh, for
    real: a throwaway sshd on 127.0.0.1 inside fresh network and mount
    namespaces (its privilege separation directory on the namespace's own
    /run: the host's is never touched, so two checkouts can run this at
    once), irp in the same namespaces connecting as root@127.0.0.1 with a
    throwaway key; nftables, and iptables/ip6tables when installed. The
    rules are read back with nft / iptables in the namespace. Skipped
    (passes) without sshd, ssh, nft or the namespaces."""
    clean(env)
    why = ssh_live_missing()
    if why or not shutil.which("nft"):
        print("       (skipped: %s)" % (why or "no nft"))
        return
    ipt = bool(shutil.which("iptables") and shutil.which("ip6tables"))
    live = SshLive(env, os.path.join(env.dir, "authorized_keys"), root_login=True)
    shutil.copy(live.key + ".pub", os.path.join(env.dir, "authorized_keys"))
    methods = ["nftables"] + (["iptables"] if ipt else [])
    phases = []
    for m in methods:
        show = [["nft", "list", "ruleset"]] if m == "nftables" else [["iptables", "-S"], ["ip6tables", "-S"]]
        for kind, steps in (("contain", SSH_CONTAIN), ("release", SSH_RELEASE)):
            run = "%s-%s" % (m, kind)
            pb = env.write(run + ".lua", SSH_PB % {"m": m, "steps": steps % {"m": m}})
            phases.append(live.phase(run, pb, show=show))
    with host_untouched():
        port, ph, log = live.run(phases)
    for name, x in ph.items():
        check(x["code"] == 0, "irp run %s succeeds: %s\n%s\n%s" % (name, x["out"], x["err"], x["shown"]))
        events = env.events(run=name)
        check("step.failed" not in events, "no step failed in %s: %r" % (name, events))
        check(env.record("run.finished", run=name)["data"]["status"] == "succeeded", "%s succeeded" % name)
        execs = [r["data"] for r in env.journal(name) if r["type"] == "step.exec"]
        check(execs, "%s ran commands" % name)
        for e in execs:
            check(e["command"].startswith(live.ssh_prefix(port)) and " root@127.0.0.1 -- " in e["command"]
                  and e["simulated"] is False and e["code"] == 0, "the journal records the ssh command: %r" % e)
    nexec = sum(1 for name in ph for r in env.journal(name) if r["type"] == "step.exec")
    check(log.count("Accepted publickey for root from 127.0.0.1") == nexec,
          "sshd accepted one session per command (%d): %s" % (nexec, log))

    nft_on = ph["nftables-contain"]["shown"]
    for want in ("table inet irp_isolation", "policy drop", 'iif "lo" accept', "ip saddr 127.0.0.1 accept",
                 "ip daddr 127.0.0.1 accept", "ip6 saddr 2001:db8::5 accept", "table inet irp_block",
                 "203.0.113.7", "2001:db8::/32"):
        check(want in nft_on, "nft shows %r after the isolation" % want, nft_on)
    nft_off = ph["nftables-release"]["shown"]
    check("irp_isolation" not in nft_off and "203.0.113.7" in nft_off,
          "the isolation table is gone after the release (the block stays)", nft_off)
    check(env.record("step.succeeded", "release", run="nftables-release")["data"]["result"]
          == {"host": "root@127.0.0.1", "released": True}, "release result")
    if not ipt:
        print("       (iptables part skipped: no iptables/ip6tables)")
        return
    ipt_on = ph["iptables-contain"]["shown"]
    for want in ("-A INPUT -j IRP_ISOLATE", "-A OUTPUT -j IRP_ISOLATE", "-A IRP_ISOLATE -s 127.0.0.1/32 -j ACCEPT",
                 "-A IRP_ISOLATE -j DROP", "-A INPUT -s 203.0.113.7/32 -j DROP",
                 "-A IRP_ISOLATE -s 2001:db8::5/128 -j ACCEPT", "-A INPUT -s 2001:db8::/32 -j DROP"):
        check(want in ipt_on, "iptables shows %r after the isolation" % want, ipt_on)
    ipt_off = ph["iptables-release"]["shown"]
    check("IRP_ISOLATE" not in ipt_off and "-A INPUT -s 203.0.113.7/32 -j DROP" in ipt_off,
          "the isolation chain is gone after the release (the block stays)", ipt_off)


# ---------------------------------------------------------------- live ssh + sudo, as a non-root user

OPS, NORULE = "irp-ops", "irp-nosudo"
SUDOERS_RULE = "irp-ops ALL=(ALL) NOPASSWD: ALL"


def sudo_missing():
    """Why sudo over ssh cannot be tested here: None when it can."""
    if not shutil.which("sudo") or not shutil.which("visudo"):
        return "no sudo"
    try:
        with open("/etc/sudoers") as f:
            lines = [l.strip() for l in f]
    except OSError as e:
        return "cannot read /etc/sudoers: %s" % e
    if "@includedir /etc/sudoers.d" not in lines and "#includedir /etc/sudoers.d" not in lines:
        return "/etc/sudoers does not include /etc/sudoers.d"
    for name in (OPS, NORULE):
        try:
            import pwd
            pwd.getpwnam(name)
            return "a user %s exists on this machine" % name
        except KeyError:
            pass
    return None


HOST_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers")
HOST_DIRS = ("/etc/sudoers.d", "/run/sudo")


def host_snapshot():
    """What the sudo tests must leave as it was on the host: the account and
    sudoers files (content and metadata), /etc/sudoers.d and /run/sudo (every
    entry), the names in /run (sshd's privilege separation directory is made
    on the helper's own /run) and the mount points."""
    snap = {}
    for path in HOST_FILES:
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                snap[path] = (hashlib.sha256(f.read()).hexdigest(), st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
        except FileNotFoundError:
            snap[path] = None
    for top in HOST_DIRS:
        entries = []
        for root, dirs, files in os.walk(top):
            for name in [""] + dirs + files:
                st = os.lstat(os.path.join(root, name))
                entries.append((os.path.join(root, name), st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns))
        snap[top] = sorted(entries)
    snap["/run"] = sorted(os.listdir("/run"))
    with open("/proc/self/mountinfo") as f:
        snap["mounts"] = sorted(l.split()[4] for l in f)
    return snap


def private_etc(env, pubkey, users, sudoers):
    """Files for the helper's mount namespace: copies of /etc/passwd,
    /etc/shadow and /etc/group adding users (each with a free uid and a group
    of its own, home env.dir/home/NAME authorizing pubkey, shell /bin/sh,
    password field '*': no password, yet not locked for sshd without PAM),
    and a sudoers.d directory (root's, mode 0440) holding only the sudoers
    lines. Returns the (copy, target) pairs to bind-mount there. The host's
    files are only read."""
    etc = os.path.join(env.dir, "etc")
    os.makedirs(etc, mode=0o700)
    os.chmod(env.dir, 0o711)  # the users reach their homes
    with open("/etc/passwd") as f:
        passwd = f.read()
    with open("/etc/group") as f:
        group = f.read()
    with open("/etc/shadow") as f:
        shadow = f.read()
    taken = {int(l.split(":")[2]) for l in (passwd + group).splitlines() if l.count(":") >= 3}
    free = (i for i in range(50000, 60000) if i not in taken)
    today = int(time.time() // 86400)
    os.makedirs(os.path.join(env.dir, "home"), mode=0o755)
    for name in users:
        uid = next(free)
        home = os.path.join(env.dir, "home", name)
        passwd += "%s:x:%d:%d:irp e2e test user:%s:/bin/sh\n" % (name, uid, uid, home)
        group += "%s:x:%d:\n" % (name, uid)
        shadow += "%s:*:%d:0:99999:7:::\n" % (name, today)
        os.makedirs(os.path.join(home, ".ssh"), mode=0o700)
        os.chmod(home, 0o700)
        with open(os.path.join(home, ".ssh", "authorized_keys"), "w") as f:
            f.write(pubkey)
        for path in (home, os.path.join(home, ".ssh"), os.path.join(home, ".ssh", "authorized_keys")):
            os.chown(path, uid, uid)
    binds = []
    for name, text in (("passwd", passwd), ("group", group), ("shadow", shadow)):
        copy = os.path.join(etc, name)
        with open(copy, "w") as f:
            f.write(text)
        st = os.stat("/etc/" + name)
        os.chmod(copy, st.st_mode & 0o7777)
        os.chown(copy, st.st_uid, st.st_gid)
        binds.append((copy, "/etc/" + name))
    sudoers_d = os.path.join(env.dir, "sudoers.d")
    os.makedirs(sudoers_d, mode=0o755)
    rule = os.path.join(sudoers_d, "irp-e2e")
    with open(rule, "w") as f:
        # no syslog: nothing of the test reaches the host's logs either
        f.write("# irp e2e test: seen only inside the test's mount namespace\nDefaults !syslog\n%s\n" % sudoers)
    os.chmod(rule, 0o440)
    q = subprocess.run(["visudo", "-c", "-f", rule], capture_output=True, text=True, timeout=30)
    check(q.returncode == 0, "visudo accepts the test's sudoers file", q)
    binds.append((sudoers_d, "/etc/sudoers.d"))
    return binds


@contextlib.contextmanager
def host_untouched():
    """Fails the test when the host's accounts, sudoers, /run/sudo, /run/sshd
    or mount points changed across the block."""
    before = host_snapshot()
    try:
        yield
    finally:
        after = host_snapshot()
        changed = [k for k in before if before[k] != after[k]]
        check(not changed, "the host is unchanged: %s changed" % changed)
        for name in (OPS, NORULE):
            q = subprocess.run(["getent", "passwd", name], capture_output=True, timeout=30)
            check(q.returncode != 0, "no user %s on the host" % name)


SUDO_PB = """local blockip = require "blockip"
local evidence = require "evidence"
""" + SSH_OPTS_LUA + """
return playbook { id = "%(id)s", title = "T", inputs = { """ + SSH_INPUTS + """, text = {}, blob = {} },
  steps = {
%(steps)s
  } }
"""

SUDO_STEPS = """    blockip.firewall { id = "block", host = "irp-ops@127.0.0.1", addr = "203.0.113.7", method = "nftables",
                       sudo = true, ssh_options = ssh },
    evidence.files { id = "text", host = "irp-ops@127.0.0.1", files = { "{{text}}" }, sudo = true,
                     ssh_options = ssh },
    evidence.files { id = "b64", host = "irp-ops@127.0.0.1", files = { "{{blob}}" }, encoding = "base64",
                     sudo = true, ssh_options = ssh },
    evidence.commands { id = "cmds", host = "irp-ops@127.0.0.1", sudo = true, ssh_options = ssh, commands = {
      { name = "id.txt", argv = { "id", "-u" } },
      { name = "copy.txt", argv = { "cat", "{{text}}" } },
      { name = "both.txt", argv = { "sh", "-c", "echo out; echo err >&2" } },
    } },
    evidence.commands { id = "plain", host = "irp-ops@127.0.0.1", ssh_options = ssh, commands = {
      { name = "whoami.txt", argv = { "id", "-un" } },
    } },"""

# irp-ops without sudo = true: the root-only file cannot be read
NOSUDO_STEPS = """    evidence.files { id = "nosudo", host = "irp-ops@127.0.0.1", files = { "{{text}}" }, ssh_options = ssh },"""

# irp-nosudo has no sudoers rule: sudo -n refuses at once instead of prompting
NORULE_STEPS = """    blockip.firewall { id = "refused-block", host = "irp-nosudo@127.0.0.1", addr = "198.51.100.9",
                       method = "nftables", sudo = true, ssh_options = ssh, on_failure = "continue" },
    evidence.files { id = "refused", host = "irp-nosudo@127.0.0.1", files = { "{{text}}" }, sudo = true,
                     ssh_options = ssh },"""


def sha(data):
    return hashlib.sha256(data).hexdigest()


def execs_of(env, run, step=None):
    return [r for r in env.journal(run) if r["type"] == "step.exec" and (step is None or r["step"] == step)]


def custody(env, run, step):
    """The evidence plugin's custody records (step.log) of a step."""
    return [r["data"] for r in env.journal(run) if r["type"] == "step.log" and r["step"] == step
            and r["data"]["msg"].startswith("evidence: ")]


def succeeded_in(env, run, step):
    return env.record("step.succeeded", step, run=run)["data"]["result"]


def test_ssh_sudo_live_blockip_and_evidence_as_a_non_root_user(env):
    """blockip.firewall and evidence.files / evidence.commands with sudo =
    true over ssh, for real, logged in as a non-root user (irp-ops) who may
    sudo without a password: a throwaway sshd in fresh network and mount
    namespaces, where (only) copies of /etc/passwd, /etc/shadow and
    /etc/group adding the user and a sudoers.d with the rule are mounted.
    The files collected are root's, mode 0600; without sudo = true the same
    read fails (permission denied), and a second user without a sudoers rule
    gets a clear refusal from sudo -n, not a prompt. The host's files are
    checked to be unchanged. Skipped (passes) without sshd, sudo, nft or the
    namespaces."""
    clean(env)
    why = ssh_live_missing() or sudo_missing() or (not shutil.which("nft") and "no nft") or None
    if why:
        print("       (skipped: %s)" % why)
        return
    with host_untouched():
        live = SshLive(env, ".ssh/authorized_keys", root_login=False)
        binds = private_etc(env, live.pubkey, [OPS, NORULE], SUDOERS_RULE)
        ev = os.path.join(env.dir, "evidence")
        os.makedirs(ev, mode=0o755)
        # quoting through ssh, the remote shell and sudo; a backslash (sha256sum -- FILE would escape it)
        text = os.path.join(ev, "auth log's\\copy.txt")
        with open(text, "w") as f:
            f.write("Nov 25 03:12:01 web-07 sshd[812]: Accepted publickey for deploy from 203.0.113.7\n")
        blob = os.path.join(ev, "blob.bin")
        with open(blob, "wb") as f:
            f.write(bytes(range(256)) * 8)
        for path in (text, blob):
            os.chmod(path, 0o600)
        args = ["-v", "text=" + text, "-v", "blob=" + blob]
        nft = [["nft", "list", "ruleset"]]
        phases = []
        for run, steps in (("ops", SUDO_STEPS), ("nosudo", NOSUDO_STEPS), ("norule", NORULE_STEPS)):
            pb = env.write(run + ".lua", SUDO_PB % {"id": "sudo-" + run, "steps": steps})
            phases.append(live.phase(run, pb, args, show=nft))
        port, ph, log = live.run(phases, binds)

    # irp-ops with sudo: everything worked, every command through ssh and sudo -n
    x = ph["ops"]
    check(x["code"] == 0, "irp run ops succeeds: %s\n%s\n%s\n%s" % (x["out"], x["err"], x["shown"], log))
    check("step.failed" not in env.events(run="ops"), "no step failed")
    prefix = live.ssh_prefix(port)
    for r in execs_of(env, "ops"):
        e = r["data"]
        remote = " irp-ops@127.0.0.1 -- " + ("id -un" if r["step"] == "plain" else "sudo -n ")
        check(e["command"].startswith(prefix) and remote in e["command"] and e["simulated"] is False
              and e["code"] == 0, "the journal records the ssh command (%s): %r" % (remote, e))
    check(len(execs_of(env, "ops")) == 7, "one command per block, file and evidence command")
    check("table inet irp_block" in x["shown"] and "203.0.113.7" in x["shown"],
          "nft shows the block made through sudo", x["shown"])
    check("sudo -n sh -c 'nft -f - && nft get element inet irp_block v4 \"{ $1 }\"' irp-block 203.0.113.7"
          in execs_of(env, "ops", "block")[0]["data"]["command"], "blockip ran nft under sudo -n")

    want = sha(open(text, "rb").read())
    item = succeeded_in(env, "ops", "text")["items"][0]
    check(item["source_sha256"] == want and item["sha256"] == want and item["name"] == "auth_log_s_copy.txt",
          "the root-only text file was read verbatim through sudo: %r" % item)
    check(sha(open(item["path"], "rb").read()) == want, "artifact file hash")
    log_text = custody(env, "ops", "text")
    check(len(log_text) == 1, "one custody record: %r" % log_text)
    c = log_text[0]
    f = c["fields"]
    check(c["msg"] == "evidence: " + text and f["source"] == "irp-ops@127.0.0.1" and f["file"] == text
          and f["source_sha256"] == want and f["sha256"] == want and f["encoding"] == "text" and f["run"] == "ops"
          and f["step"] == "text" and f["collected_at"] and f["argv"][0] == "ssh"
          and f["argv"][-3:] == ["irp-ops@127.0.0.1", "--", f["argv"][-1]]
          and f["argv"][-1].startswith("sudo -n sh -c ") and f["argv"][-1].endswith(
              " irp-evidence '%s'" % text.replace("'", "'\\''")), "the custody record: %r" % c)

    b = succeeded_in(env, "ops", "b64")["items"][0]
    import base64
    data = open(blob, "rb").read()
    check(base64.b64decode(open(b["path"], "rb").read()) == data and b["source_sha256"] == sha(data)
          and b["name"] == "blob.bin.b64" and b["sha256"] == sha(open(b["path"], "rb").read()),
          "base64 round trip of the root-only binary file: %r" % b)
    c = custody(env, "ops", "b64")
    check(len(c) == 1 and c[0]["fields"]["encoding"] == "base64" and c[0]["fields"]["source_sha256"] == sha(data)
          and c[0]["fields"]["argv"][-1].startswith("sudo -n sh -c "), "the base64 custody record: %r" % c)

    items = {i["name"]: i for i in succeeded_in(env, "ops", "cmds")["items"]}
    content = {n: open(i["path"], "rb").read() for n, i in items.items()}
    check(content == {"id.txt": b"0\n", "copy.txt": open(text, "rb").read(), "both.txt": b"out\n"},
          "the commands ran as root: %r" % content)
    check(all(items[n]["sha256"] == sha(content[n]) for n in items), "command artifact hashes")
    check(items["both.txt"]["stderr_sha256"] == sha(b"err\n"), "stderr stored: %r" % items["both.txt"])
    c = {r["msg"]: r["fields"] for r in custody(env, "ops", "cmds")}
    check(sorted(c) == ["evidence: both.txt", "evidence: copy.txt", "evidence: id.txt"]
          and c["evidence: id.txt"]["argv"][-1] == "sudo -n id -u" and c["evidence: id.txt"]["code"] == 0
          and c["evidence: id.txt"]["sha256"] == sha(b"0\n"), "the command custody records: %r" % c)
    plain = succeeded_in(env, "ops", "plain")["items"][0]
    check(open(plain["path"], "rb").read() == OPS.encode() + b"\n", "without sudo the commands run as irp-ops")

    # irp-ops without sudo = true: the file is root's
    x = ph["nosudo"]
    reason = env.record("step.failed", "nosudo", run="nosudo")["data"]["reason"]
    check(x["code"] == 1 and "Permission denied" in reason and text in reason,
          "without sudo the root-only file is not readable: %s" % reason, x)
    c = custody(env, "nosudo", "nosudo")
    check(len(c) == 1 and c[0]["msg"] == "evidence: %s NOT collected" % text and c[0]["fields"]["code"] != 0,
          "custody records the failure: %r" % c)

    # irp-nosudo: no sudoers rule; sudo -n refuses at once, nothing is blocked
    x = ph["norule"]
    check(x["code"] == 1 and x["elapsed"] < 20 * live.slack, "the run ends promptly with a failure: %.1fs" %
          x["elapsed"], x)
    for step in ("refused-block", "refused"):
        reason = env.record("step.failed", step, run="norule")["data"]["reason"]
        check("sudo: a password is required" in reason, "%s: sudo -n refused clearly: %s" % (step, reason))
        e = execs_of(env, "norule", step)
        check(len(e) == 1 and " irp-nosudo@127.0.0.1 -- sudo -n sh -c " in e[0]["data"]["command"]
              and e[0]["data"]["code"] == 1, "%s: the ssh command: %r" % (step, e))
    check("198.51.100.9" not in x["shown"] and "203.0.113.7" in x["shown"], "nothing was blocked", x["shown"])

    # one sshd session per command, each for the user the playbook names
    nops = len(execs_of(env, "ops")) + len(execs_of(env, "nosudo"))
    check(log.count("Accepted publickey for irp-ops from 127.0.0.1") == nops and
          log.count("Accepted publickey for irp-nosudo from 127.0.0.1") == len(execs_of(env, "norule")) and
          "for root" not in log, "sshd accepted one session per command: %s" % log)


def test_ssh_sudo_live_postgres_run_as_postgres(env):
    """postgres.basebackup (with start) and postgres.promote over ssh as the
    non-root irp-ops, run_as = "postgres" (sudo -n -u postgres pg_ctl ...),
    for real: a primary and a standby on unix sockets in a temporary
    directory, the sshd in fresh network and mount namespaces (as in the
    test above). Skipped (passes) without the PostgreSQL server binaries,
    sshd, sudo or the namespaces."""
    clean(env)
    why = ssh_live_missing() or sudo_missing()
    b = pg_bin()
    if why or not b:
        print("       (skipped: %s)" % (why or "no PostgreSQL server binaries, or not root"))
        return
    with host_untouched(), pg_primary_and_standby(b) as (d, u):
        live = SshLive(env, ".ssh/authorized_keys", root_login=False)
        binds = private_etc(env, live.pubkey, [OPS], SUDOERS_RULE)
        more = ',\n                          host = "irp-ops@127.0.0.1", run_as = "postgres", ssh_options = ssh'
        pb = env.write("pg.lua", PG_PB % {"prelude": SSH_OPTS_LUA, "inputs": SSH_INPUTS, "bin": b, "more": more})
        port, ph, log = live.run([live.phase("pg", pb, ["-v", "dir=" + d])], binds)
        x = ph["pg"]
        check(x["code"] == 0, "irp run pg succeeds: %s\n%s\n%s" % (x["out"], x["err"], log))
        check_pg_restored_and_promoted(env, d, u, b, run="pg")
        cmds = [r["data"]["command"] for r in execs_of(env, "pg")]
        remote = [c.split(" irp-ops@127.0.0.1 -- ", 1)[1] for c in cmds if c.startswith(live.ssh_prefix(port))
                  and " irp-ops@127.0.0.1 -- " in c]
        check(len(remote) == len(cmds) == 5, "every command went over ssh as irp-ops: %r" % cmds)
        s = "sudo -n -u postgres %s/" % b
        want = [s + "pg_basebackup -d 'host=%s port=55432 user=postgres' -D %s/restored -X stream -c fast "
                "--no-password -R" % (d, d),
                s + "pg_ctl start -D %s/restored -w -t 120 -l %s/restored/irp-start.log -o '-p 55434'" % (d, d),
                s + "pg_ctl status -D %s/restored" % d,
                s + "pg_ctl promote -D %s/standby -w -t 60" % d,
                s + "psql -X -A -t -d 'host=%s port=55433 user=postgres' -c 'SELECT pg_is_in_recovery()'" % d]
        check(remote == want, "the remote commands: %r" % remote)
        check(all(r["data"]["code"] == 0 and r["data"]["simulated"] is False for r in execs_of(env, "pg")),
              "every command exited 0")
        check(log.count("Accepted publickey for irp-ops from 127.0.0.1") == 5, "one session per command: %s" % log)
