"""End-to-end tests of plugins (require inside the sandbox, the search path,
load-time validation naming the playbook's line), of every shipped plugin's
drill path, of the live paths this machine allows (evidence collection of
real files; PostgreSQL promote and pg_basebackup when the server binaries are
installed; nftables and iptables inside a fresh network namespace when those
tools are installed; blockip and isolate over ssh to a real throwaway sshd on
127.0.0.1 in a network namespace; the HTTP plugins against a local stand-in
server), and
of --attach (before / after / at_end_of, and its errors) and of the
configuration's attach section."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from harness import canary, check


def clean(env):
    env.env.pop("IRP_PLUGIN_PATH", None)


def drill_ok(e, pb, *args, **kw):
    r = e.drill(pb, "--yes", *args, **kw)
    check(r.code == 0, "the drill succeeds", r)
    return r


def succeeded(env, step):
    return env.record("step.succeeded", step)["data"]["result"]


HELLO = '''
local M = {}
function M.greet(opts)
  if type(opts) ~= "table" or type(opts.who) ~= "string" then
    error("hello.greet: option 'who' must be a string", 2)
  end
  return step(opts.id or "greet") {
    title = "Greet " .. opts.who,
    run = function(ctx) return { who = opts.who, from = "%s" } end,
  }
end
return M
'''


def test_plugin_from_plugins_dir(env):
    clean(env)
    env.write("plug/hello.lua", HELLO % "plug")
    pb = env.playbook('hello.greet { who = "world" },', extra="", name="pb.lua")
    env.write("pb.lua", 'local hello = require "hello"\n' + open(pb).read())
    drill_ok(env, pb, "--plugins", os.path.join(env.dir, "plug"))
    check(succeeded(env, "greet") == {"who": "world", "from": "plug"}, "the plugin's step ran")


def test_plugins_dir_overrides_shipped_plugin(env):
    clean(env)
    env.write("mine/ticket.lua", HELLO % "mine")
    pb = env.write("pb.lua", '''local ticket = require "ticket"
return playbook { id = "t", title = "T", steps = { ticket.greet { who = "me" } } }
''')
    drill_ok(env, pb, "--plugins", os.path.join(env.dir, "mine"))
    check(succeeded(env, "greet")["from"] == "mine", "--plugins comes before the shipped plugins/")
    # and without --plugins the shipped one is found (it has no greet)
    r = env.drill(pb, "--yes")
    check(r.code == 65 and "greet" in r.err, "the shipped ticket plugin was loaded instead", r)


def test_plugin_path_variable_and_order(env):
    clean(env)
    env.write("a/hello.lua", HELLO % "a")
    env.write("b/hello.lua", HELLO % "b")
    env.write("b/only_b.lua", 'return { x = 1 }')
    pb = env.write("pb.lua", '''local hello = require "hello"
local b = require "only_b"
return playbook { id = "t", title = "T", steps = { hello.greet { who = "x" } } }
''')
    path = os.path.join(env.dir, "a") + ":" + os.path.join(env.dir, "b")
    r = env.irp("check", pb, env={"IRP_PLUGIN_PATH": path})
    check(r.code == 0, "check finds plugins on IRP_PLUGIN_PATH", r)
    drill_ok(env, pb, env={"IRP_PLUGIN_PATH": path})
    check(succeeded(env, "greet")["from"] == "a", "IRP_PLUGIN_PATH is searched in order")
    shutil.rmtree(env.state)
    drill_ok(env, pb, "--plugins", os.path.join(env.dir, "b"), env={"IRP_PLUGIN_PATH": path})
    check(succeeded(env, "greet")["from"] == "b", "--plugins comes before IRP_PLUGIN_PATH")


def test_plugin_validation_error_at_check_names_playbook_line(env):
    clean(env)
    pb = env.write("pb.lua", '''local blockip = require "blockip"
local ticket = require "ticket"
return playbook { id = "t", title = "T", steps = {
  blockip.firewall { id = "block", host = "fw-1", addr = "203.0.113.300" },
} }
''')
    r = env.irp("check", pb)
    check(r.code == 65, "check fails", r)
    check("pb.lua:4: blockip.firewall: option 'addr'" in r.err, "the playbook's line is named", r)
    env.write("pb.lua", open(pb).read().replace('addr = "203.0.113.300"', 'adr = "203.0.113.3"'))
    r = env.irp("check", pb)
    check(r.code == 65 and "pb.lua:4:" in r.err and "unknown option 'adr'" in r.err, "unknown option", r)
    # blocking every address would cut the responder off too: refused at check,
    # and at run time when a template fills it in
    text = open(pb).read()
    for addr in ("0.0.0.0/0", "::/0"):
        env.write("pb.lua", text.replace('adr = "203.0.113.3"', 'addr = "%s"' % addr))
        r = env.irp("check", pb)
        check(r.code == 65 and "pb.lua:4: blockip.firewall: option 'addr'" in r.err and "every address" in r.err,
              "%s refused" % addr, r)
    env.write("pb.lua", text.replace('adr = "203.0.113.3"', 'addr = "{{ip}}"').replace(
        'return playbook { id = "t", title = "T",', 'return playbook { id = "t", title = "T", inputs = { ip = {} },'))
    r = env.drill(pb, "--yes", "-v", "ip=0.0.0.0/0")
    check(r.code == 1 and "every address" in env.record("step.failed", "block")["data"]["reason"],
          "a templated /0 fails the step before any command", r)
    check("step.exec" not in env.events(), "nothing was run")


def test_plugin_load_time_choices_refuse_templates(env):
    """method / encoding pick the commands and the drill table when the
    playbook loads: a template there would silently take the other branch
    (method = "{{m}}" ran the iptables script), so check refuses it."""
    clean(env)
    for lib, line, want in (
            ("isolate", 'isolate.firewall { id = "s", host = "web-1", allow = { "10.0.0.5" }, method = "{{m}}" }',
             "isolate.firewall: option 'method' is chosen when the playbook loads: write it out (nftables, iptables), "
             "not a template ('{{m}}')"),
            ("isolate", 'isolate.release { id = "s", host = "web-1", method = "{{m}}" }', "isolate.release: option 'method'"),
            ("blockip", 'blockip.firewall { id = "s", host = "fw-1", addr = "203.0.113.7", method = "{{m}}" }',
             "blockip.firewall: option 'method' is chosen when the playbook loads"),
            ("evidence", 'evidence.files { id = "s", files = { "/etc/hostname" }, encoding = "{{m}}" }',
             "evidence.files: option 'encoding' is chosen when the playbook loads: write it out (text, base64)")):
        pb = env.write("pb.lua", 'local %s = require "%s"\nreturn playbook { id = "t", title = "T", '
                       'inputs = { m = { default = "nftables" } },\n  steps = { %s } }\n' % (lib, lib, line))
        r = env.irp("check", pb)
        check(r.code == 65 and ("pb.lua:3: " + want) in r.err, "refused: %s" % want, r)


URL_STEPS = (
    ("isolate", 'isolate.edr { id = "s", url = %s, host = "web-07" }', "isolate.edr"),
    ("statuspage", 'statuspage.update { id = "s", url = %s, name = "N", status = "investigating", message = "M" }',
     "statuspage.update"),
    ("statuspage", 'statuspage.stakeholders { id = "s", message = "M", webhooks = { %s } }', "statuspage.stakeholders"),
    ("blockip", 'blockip.api { id = "s", url = %s, addr = "203.0.113.7" }', "blockip.api"),
    ("account", 'account.disable { id = "s", url = %s, user = "u1" }', "account.disable"),
    ("ticket", 'ticket.create { id = "s", url = %s, summary = "S" }', "ticket.create"),
)


def test_plugin_urls_must_be_http(env):
    """Every URL option of the HTTP plugins: a literal that is not http(s)
    fails irp check at the playbook's line; a template is checked once
    filled, and the step fails before any request."""
    clean(env)
    for lib, line, where in URL_STEPS:
        option = "webhooks" if "webhooks" in line else "url"
        for bad in ("ftp://e", "file:///etc/passwd", "https://", "tickets.example/api"):
            pb = env.write("pb.lua", 'local %s = require "%s"\nreturn playbook { id = "t", title = "T",\n'
                           '  steps = { %s } }\n' % (lib, lib, line % json.dumps(bad)))
            r = env.irp("check", pb)
            want = "pb.lua:3: %s: option '%s': '%s' is not an http:// or https:// URL" % (where, option, bad)
            check(r.code == 65 and want in r.err, "refused at check: %s" % want, r)
        pb = env.write("pb.lua", 'local %s = require "%s"\nreturn playbook { id = "t", title = "T", '
                       'inputs = { api = {} },\n  steps = { %s } }\n' % (lib, lib, line % '"{{api}}"'))
        check(env.irp("check", pb).code == 0, "a template passes check (%s)" % where)
        shutil.rmtree(env.state, ignore_errors=True)
        r = env.drill(pb, "--yes", "-v", "api=ftp://e")
        reason = env.record("step.failed", "s")["data"]["reason"]
        check(r.code == 1 and "%s: 'ftp://e' (from '{{api}}') is not an http:// or https:// URL" % option in reason,
              "%s: the filled template is refused: %s" % (where, reason), r)
        check("step.http" not in env.events(), "no request was made (%s)" % where)


def test_statuspage_templated_status_checked_at_run_time(env):
    clean(env)
    pb = env.write("pb.lua", '''local statuspage = require "statuspage"
return playbook { id = "t", title = "T", inputs = { st = {} }, steps = {
  statuspage.update { id = "s", url = "https://status.example/api", name = "N", status = "{{st}}", message = "M" },
} }
''')
    r = env.irp("check", pb)
    check(r.code == 0, "a templated status passes check", r)
    r = env.drill(pb, "--yes", "-v", "st=closed")
    reason = env.record("step.failed", "s")["data"]["reason"]
    check(r.code == 1 and "status: 'closed' (from '{{st}}') must be one of investigating, identified, monitoring, "
          "resolved" in reason, "an unknown status is refused once filled: %s" % reason, r)
    check("step.http" not in env.events(), "no request was made")
    shutil.rmtree(env.state)
    drill_ok(env, pb, "-v", "st=monitoring")
    check(succeeded(env, "s")["status"] == "monitoring", "a known status is sent")
    check(env.record("step.http", "s")["data"]["method"] == "POST", "the request was made")
    env.write("pb.lua", open(pb).read().replace('"{{st}}"', '"closed"'))
    r = env.irp("check", pb)
    check(r.code == 65 and "pb.lua:3: statuspage.update: option 'status' must be one of" in r.err,
          "a literal unknown status is refused at check", r)


ADDR_GOOD = ["203.0.113.7", "203.0.113.0/24", "0.0.0.0", "2001:db8::1", "2001:db8::/32", "::", "::1", "1::",
             "fe80::1/128", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "2001:DB8:0:0:0:0:0:1",
             "::ffff:192.0.2.1", "::ffff:192.0.2.0/120", "1:2:3:4:5:6:192.0.2.1", "::192.0.2.1", "2001:db8::/0"]
ADDR_BAD = ["::::", ":::", "1::2::3", "1:::2", ":1::", "1::2:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:",
            "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::", "2001:db8::g", "2001:db8::/129",
            "2001:db8::/", "::ffff:192.0.2.256", "::ffff:192.0.2", "1.2.3.4::", "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3.4:5", "010.0.0.1", "10.0.0.01", "::ffff:10.00.0.1", "203.0.113.7/33", "203.0.113", "1.2.3.4.5", "1.2.3.256", "", "/24", "web-07"]


def test_irpkit_addr_ok_is_strict(env):
    """kit.addr_ok: IPv4, and IPv6 in RFC 4291 text form (one "::" at most,
    8 groups of 1-4 hex digits, an IPv4 tail), each with an optional prefix."""
    clean(env)
    pb = env.write("pb.lua", '''local kit = require "irpkit"
local good, bad = %s, %s
return playbook { id = "t", title = "T", steps = { step "a" { run = function(ctx)
  local wrong = {}
  for _, a in ipairs(good) do if not kit.addr_ok(a) then wrong[#wrong + 1] = "refused " .. a end end
  for _, a in ipairs(bad) do if kit.addr_ok(a) then wrong[#wrong + 1] = "accepted " .. a end end
  return { wrong = table.concat(wrong, ", ") }
end } } }
''' % tuple("{" + ", ".join(json.dumps(a) for a in lst) + "}" for lst in (ADDR_GOOD, ADDR_BAD)))
    drill_ok(env, pb)
    check(succeeded(env, "a")["wrong"] == "", "addr_ok: %s" % succeeded(env, "a")["wrong"])
    # and through a plugin, at check time
    pb = env.write("pb.lua", 'local blockip = require "blockip"\nreturn playbook { id = "t", title = "T",\n'
                   '  steps = { blockip.firewall { id = "b", host = "fw-1", addr = "::::" } } }\n')
    r = env.irp("check", pb)
    check(r.code == 65 and "pb.lua:3: blockip.firewall: option 'addr': '::::' is not an IP address" in r.err,
          "'::::' refused at check", r)


def test_plugin_errors_name_plugin_file_line(env):
    clean(env)
    env.write("p/broken.lua", 'local M = {}\nfunction M.x(\nreturn M\n')
    env.write("p/raises.lua", 'local M = {}\n\nlocal y = nil + 1\nreturn M\n')
    for name, line in (("broken", 3), ("raises", 3)):
        pb = env.write("pb.lua", 'local m = require "%s"\nreturn playbook { id = "t", title = "T", '
                       'steps = { step "a" { run = function() end } } }\n' % name)
        r = env.irp("check", pb, env={"IRP_PLUGIN_PATH": os.path.join(env.dir, "p")})
        want = "%s/p/%s.lua:%d:" % (env.dir, name, line)
        check(r.code == 65 and want in r.err, "error at %s" % want, r)


def test_require_refuses_bad_names_and_missing(env):
    clean(env)
    env.write("secret.lua", 'return { leaked = true }')
    for name in ("../secret", "/etc/passwd", "Hello", "a..b", ".hidden", "x/y"):
        pb = env.write("pb.lua", 'local m = require %s\nreturn playbook { id = "t", title = "T", '
                       'steps = { step "a" { run = function() end } } }\n' % json.dumps(name))
        r = env.irp("check", pb, env={"IRP_PLUGIN_PATH": os.path.join(env.dir, "plug")})
        check(r.code == 65 and "pb.lua:1: require:" in r.err and "not a valid plugin name" in r.err,
              "refused %r" % name, r)
    pb = env.write("pb.lua", 'local m = require "nosuch"\nreturn playbook { id = "t", title = "T", '
                   'steps = { step "a" { run = function() end } } }\n')
    r = env.irp("check", pb)
    check(r.code == 65 and "pb.lua:1: require: plugin 'nosuch' not found" in r.err, "missing plugin", r)


def test_json_module_and_plugin_cache(env):
    clean(env)
    env.write("p/counter.lua", 'COUNT = (COUNT or 0) + 1\nreturn { n = COUNT }')
    pb = env.write("pb.lua", '''local json = require "json"
local a = require "counter"
local b = require "counter"
return playbook { id = "t", title = "T", steps = {
  step "a" { run = function(ctx)
    local c = require "counter"
    return { same = (a == b and b == c), n = c.n, v = json.decode('{"x":[1,2]}').x[2],
             e = json.encode({ k = "v" }) }
  end },
} }
''')
    drill_ok(env, pb, "--plugins", os.path.join(env.dir, "p"))
    check(succeeded(env, "a") == {"same": True, "n": 1, "v": 2, "e": '{"k":"v"}'}, "cached once per state")


# ---------------------------------------------------------------- shipped plugins

SHIPPED = {
    "isolate": '''
    isolate.firewall { id = "nft", host = "{{host}}", allow = { "10.0.0.5" } },
    isolate.firewall { id = "ipt", host = "{{host}}", allow = { "10.0.0.5", "2001:db8::5" }, method = "iptables" },
    isolate.edr { id = "edr", url = "https://edr.example/api/v1", host = "{{host}}", auth_secret = "EDR_AUTH" },
    isolate.release { id = "release", host = "{{host}}" },''',
    "account": '''
    account.disable { id = "disable", url = "https://idp.example/scim/v2", user = "{{user}}" },
    account.revoke_sessions { id = "revoke", url = "https://idp.example/scim/v2", user = "{{user}}" },
    account.enable { id = "enable", url = "https://idp.example/scim/v2", user = "{{user}}" },''',
    "blockip": '''
    blockip.firewall { id = "nft", host = "fw-1", addr = "{{ip}}" },
    blockip.firewall { id = "ipt", host = "fw-1", addr = "198.51.100.0/24", method = "iptables" },
    blockip.api { id = "api", url = "https://fw.example/api/blocklist", addr = "{{ip}}" },''',
    "evidence": '''
    evidence.commands { id = "cmds", host = "{{host}}", commands = { { name = "ps.txt", argv = { "ps", "auxww" } } } },
    evidence.files { id = "files", host = "{{host}}", files = { "/var/log/auth.log" } },''',
    "ticket": '''
    ticket.create { id = "open", url = "https://tickets.example/api/tickets", summary = "Compromise of {{host}}" },
    ticket.update { id = "upd", url = "https://tickets.example/api/tickets",
                    ticket = "{{steps.open.result.ticket}}", comment = "contained", status = "resolved" },''',
    "postgres": '''
    postgres.promote { id = "promote", pgdata = "/var/lib/postgresql/16/main", conninfo = "host=/var/run/postgresql" },
    postgres.patroni_failover { id = "patroni", config = "/etc/patroni/patroni.yml", cluster = "pg-main", candidate = "pg-2" },
    postgres.basebackup { id = "restore", source = "host=10.0.0.11 user=replicator", pgdata = "/srv/pg/restore", start = true },''',
    "statuspage": '''
    statuspage.update { id = "status", url = "https://api.status.example/v1/pages/abc", name = "Degraded logins",
                        status = "investigating", message = "Investigating {{host}}" },
    statuspage.update { id = "status2", url = "https://api.status.example/v1/pages/abc",
                        incident = "{{steps.status.result.incident}}", status = "resolved", message = "Fixed" },
    statuspage.stakeholders { id = "tell", message = "Status: {{steps.status.result.incident}}",
                              webhooks = { "https://hooks.example/exec" } },''',
}


def shipped_drill(env, name):
    clean(env)
    pb = env.write("pb.lua", '''local %s = require "%s"
return playbook { id = "t", title = "T",
  inputs = { host = { default = "web-07" }, ip = { default = "203.0.113.7" }, user = { default = "2819c223" } },
  steps = {%s
  },
}
''' % (name, name, SHIPPED[name]))
    r = env.irp("check", pb)
    check(r.code == 0, "check accepts the %s steps" % name, r)
    drill_ok(env, pb)
    events = env.events()
    check("step.failed" not in events, "no step failed", events)
    for rec in env.journal():
        if rec["type"] in ("step.exec", "step.http"):
            check(rec["data"]["simulated"], "every effect was simulated", rec)
    return env


def test_shipped_isolate_drill(env):
    shipped_drill(env, "isolate")
    check(succeeded(env, "nft")["isolated"] is True and succeeded(env, "edr")["job"] == "42", "results")
    cmd = env.record("step.exec", "nft")["data"]["command"]
    check(cmd.startswith("ssh -o BatchMode=yes web-07 -- sh -c"), "over ssh: %s" % cmd)


def test_shipped_account_drill(env):
    shipped_drill(env, "account")
    check(succeeded(env, "disable")["active"] is False, "disabled")
    methods = [r["data"]["method"] for r in env.journal() if r["type"] == "step.http" and r["step"] == "disable"]
    check(methods == ["PATCH", "DELETE", "GET"], "PATCH, DELETE sessions, GET: %r" % methods)


def test_shipped_blockip_drill(env):
    shipped_drill(env, "blockip")
    check(succeeded(env, "nft") == {"addr": "203.0.113.7", "method": "nftables", "host": "fw-1", "blocked": True},
          "nft result")
    check(succeeded(env, "api")["rule"] == "rule-7731", "api result")


def test_shipped_evidence_drill(env):
    shipped_drill(env, "evidence")
    items = succeeded(env, "files")["items"]
    check(len(items) == 1 and len(items[0]["sha256"]) == 64, "an artifact with its hash: %r" % items)
    check(any(r["type"] == "artifact.stored" for r in env.journal()), "artifact.stored journaled")


def test_shipped_ticket_drill(env):
    shipped_drill(env, "ticket")
    check(succeeded(env, "open")["ticket"] == "INC-1042", "ticket id")
    urls = [r["data"]["url"] for r in env.journal() if r["type"] == "step.http" and r["step"] == "upd"]
    check(urls == ["https://tickets.example/api/tickets/INC-1042/comments",
                   "https://tickets.example/api/tickets/INC-1042"], "update urls %r" % urls)


def test_shipped_postgres_drill(env):
    shipped_drill(env, "postgres")
    cmds = [r["data"]["command"] for r in env.journal() if r["type"] == "step.exec"]
    check(cmds[0] == "runuser -u postgres -- pg_ctl promote -D /var/lib/postgresql/16/main -w -t 60", cmds[0])
    check(any("patronictl -c /etc/patroni/patroni.yml failover pg-main --candidate pg-2 --force" in c for c in cmds),
          "patronictl argv: %r" % cmds)
    check(any("pg_basebackup -d host=10.0.0.11 user=replicator -D /srv/pg/restore -X stream -c fast" in c
              for c in cmds), "pg_basebackup argv: %r" % cmds)
    check(succeeded(env, "patroni") == {"cluster": "pg-main", "leader": "pg-2"}, "patroni result")


def test_shipped_statuspage_drill(env):
    shipped_drill(env, "statuspage")
    check(succeeded(env, "status")["incident"] == "p31zjtct2jer", "incident id")
    urls = [r["data"]["url"] for r in env.journal() if r["type"] == "step.http"]
    check("https://api.status.example/v1/pages/abc/incidents/p31zjtct2jer" in urls, "update url %r" % urls)


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


def test_postgres_live_promote_and_basebackup(env):
    """A primary and a standby on unix sockets in a temporary directory,
    run as the postgres user; skipped (passes) without the server binaries."""
    clean(env)
    b = pg_bin()
    if not b:
        print("       (skipped: no PostgreSQL server binaries, or not root)")
        return
    d = tempfile.mkdtemp(prefix="irp-pg-")
    os.chmod(d, 0o755)
    shutil.chown(d, "postgres")
    u = ["runuser", "-u", "postgres", "--"]
    started = []
    try:
        subprocess.run(u + [b + "/initdb", "-D", d + "/primary", "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True)
        with open(d + "/primary/postgresql.conf", "a") as f:
            f.write("listen_addresses=''\nunix_socket_directories='%s'\nport=55432\n" % d)
        subprocess.run(u + [b + "/pg_ctl", "start", "-D", d + "/primary", "-w", "-l", d + "/p.log"],
                       check=True, capture_output=True)
        started.append("primary")
        subprocess.run(u + [b + "/pg_basebackup", "-d", "host=%s port=55432 user=postgres" % d, "-D",
                            d + "/standby", "-X", "stream", "-c", "fast", "-R"], check=True, capture_output=True)
        with open(d + "/standby/postgresql.conf", "a") as f:
            f.write("port=55433\n")
        subprocess.run(u + [b + "/pg_ctl", "start", "-D", d + "/standby", "-w", "-l", d + "/s.log"],
                       check=True, capture_output=True)
        started.append("standby")
        pb = env.write("pb.lua", '''local postgres = require "postgres"
return playbook { id = "t", title = "T", inputs = { dir = { required = true }, bin = { required = true } },
  steps = {
    postgres.basebackup { id = "restore", source = "host={{dir}} port=55432 user=postgres",
                          pgdata = "{{dir}}/restored", bin_dir = "%s", start = true, port = 55434 },
    postgres.promote { id = "promote", pgdata = "{{dir}}/standby", bin_dir = "%s",
                       conninfo = "host={{dir}} port=55433 user=postgres" },
  } }
''' % (b, b))
        r = env.run(pb, "--yes", "-v", "dir=" + d, "-v", "bin=" + b, timeout=120)
        if os.path.exists(d + "/restored/postmaster.pid"):
            started.append("restored")
        check(r.code == 0, "live restore and promote succeed", r)
        check(succeeded(env, "promote")["in_recovery"] is False, "the standby is a primary now")
        q = subprocess.run(u + [b + "/psql", "-X", "-A", "-t", "-d", "host=%s port=55434 user=postgres" % d,
                                "-c", "select pg_is_in_recovery()"], capture_output=True, text=True)
        check(q.stdout.strip() == "t", "the restored copy runs as a standby: %r" % q.stdout)
    finally:
        for name in started:
            subprocess.run(u + [b + "/pg_ctl", "stop", "-D", "%s/%s" % (d, name), "-m", "immediate"],
                           capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- attach

ATTACH_PB = '''return playbook { id = "t", title = "T", phases = { "detect", "contain", "recover" },
  steps = {
    step "a" { phase = "detect", run = function() end },
    step "b" { phase = "contain", run = function() end },
    step "c" { phase = "recover", run = function() end },
  } }
'''


def test_attach_before_after_at_end_of(env):
    clean(env)
    pb = env.write("pb.lua", ATTACH_PB)
    local = env.write("local.lua", '''return {
  attach { before = "a", step "x0" { phase = "detect", run = function() end } },
  attach { after = "b", step "x1" { run = function() end }, step "x2" { run = function() end } },
  attach { at_end_of = "detect", step "x3" { run = function(ctx) return { n = 3 } end } },
}
''')
    r = env.irp("show", pb, "--attach", local)
    check(r.code == 0, "show loads the merged playbook", r)
    marked = [line.split()[1] for line in r.out.splitlines() if line.strip()[:1].isdigit()]
    check(marked == ["x0", "a", "x3", "b", "x1", "x2", "c"], "show prints the merged outline: %r" % marked, r)
    check(r.out.count("attached from " + local) == 4, "show marks exactly the attached steps", r)
    r = env.irp("check", pb, "--attach", local)
    check(r.code == 0 and "7 steps (4 attached)" in r.out, "check counts the attached steps", r)
    drill_ok(env, pb, "--attach", local)
    order = [rec["step"] for rec in env.journal() if rec["type"] == "step.succeeded"]
    check(order == ["x0", "a", "x3", "b", "x1", "x2", "c"], "merged order %r" % order)


def test_attach_errors_are_named(env):
    clean(env)
    pb = env.write("pb.lua", ATTACH_PB)
    local = env.write("local.lua", '''return {
  attach { after = "bb", step "x1" { run = function() end } },
  attach { before = "a", step "b" { run = function() end } },
  attach { at_end_of = "contian", step "x2" { run = function() end } },
  attach { after = "a", before = "b", step "x3" { run = function() end } },
}
''')
    r = env.drill(pb, "--yes", "--attach", local)
    check(r.code == 65, "the load fails before anything runs", r)
    for want in ('local.lua:2: attach block: after = "bb" names no step of the playbook (did you mean "b"?)',
                 "local.lua:4: attach block: at_end_of = 'contian' is not a phase",
                 "local.lua:5: attach block needs exactly one of"):
        check(want in r.err, "stderr has %r" % want, r)
    check('local.lua:3: attached step "b" collides with the step of the same id at ' in r.err,
          "the collision is reported at the attach file's line", r)
    check(not os.path.exists(os.path.join(env.state, "runs")), "nothing ran")
    # an attached step whose phase is later than where it is put: the attach
    # file's line is named, not the playbook's next step
    late = env.write("late.lua", 'return attach {\n  after = "a",\n  step "y" { phase = "recover", run = function() end } }\n')
    r = env.irp("check", pb, "--attach", late)
    check(r.code == 65 and 'late.lua:3: attached step "y" is in phase \'recover\', but the playbook\'s step "b" '
          'after it (%s:4) is in the earlier phase \'contain\'' % pb in r.err and "pb.lua:4:" not in r.err,
          "the attached step is blamed", r)
    # the same file given twice is loaded once
    ok = env.write("ok.lua", 'return attach { after = "a", step "y" { run = function() end } }\n')
    r = env.irp("check", pb, "--attach", ok, "--attach", os.path.join(env.dir, ".", "ok.lua"))
    check(r.code == 0 and "4 steps (1 attached)" in r.out, "one file, loaded once", r)


def test_attach_section_of_the_configuration(env):
    """The configuration's attach section: local steps by playbook id,
    paths from the configuration's directory, applied by run, drill, check
    and show alike; an entry for another playbook is not applied; a resume
    reloads what run.started recorded, from anywhere."""
    clean(env)
    pb = env.write("pb.lua", ATTACH_PB)
    env.write("team/local/legal.lua", 'return attach { after = "b", step "tell-legal" { manual = "Call counsel." } }\n')
    env.write("team/local/other.lua", 'return attach { after = "nosuch", step "zzz" { manual = "x" } }\n')
    conf = env.write("team/irp.conf.lua", '''attach = {
  t = { "local/legal.lua" },
  ["other-playbook"] = "local/other.lua",
}
''')
    legal = os.path.join(env.dir, "team/local/legal.lua")
    r = env.irp("show", pb, "--config", conf)
    check(r.code == 0 and "tell-legal" in r.out and "attached from %s" % legal in r.out, "show merges it", r)
    r = env.irp("check", pb, env={"IRP_CONFIG": conf})
    check(r.code == 0 and "4 steps (1 attached)" in r.out, "check applies $IRP_CONFIG's attach section", r)
    r = env.irp("check", pb, "--config", conf, "--attach", env.write("dup.lua",
                'return attach { before = "a", step "tell-legal" { manual = "y" } }\n'))
    check(r.code == 65 and 'duplicate step id "tell-legal"' in r.err, "a collision with --attach is reported", r)

    r = env.run(pb, "--config", conf)  # no input: stops at the manual step
    check(r.code == 75, "the run stops at the first manual step", r)
    check(env.record("run.started")["data"]["attach"] == [{"playbook": "t", "path": legal}],
          "run.started records the attach file applied (not the other playbook's)")
    check(env.record("step.started", "tell-legal")["data"]["attached_from"] == legal, "the journal names the file")
    r = env.irp("resume", "r1", "--state-dir", env.state, "--yes", env={"IRP_CONFIG": ""})
    check(r.code == 0, "the resume reloads the recorded attach file without the configuration", r)
    order = [x["step"] for x in env.journal() if x["type"] == "step.succeeded"]
    check(order == ["a", "b", "tell-legal", "c"], "merged order %r" % order)

    bad = env.write("team/bad.lua", 'notifiers = { log = { type = "stdout" } }\nattach = {\n  t = { "local/nope.lua" },\n}\n')
    for cmd in (("check", pb, "--config", bad), ("show", pb, "--config", bad),
                ("drill", pb, "--yes", "--config", bad, "--state-dir", env.state, "--run-id", "r2")):
        r = env.irp(*cmd)
        check(r.code == 65 and "bad.lua:3: attach.t: cannot read attach file" in r.err, "%s names it" % cmd[0], r)
    check(not os.path.exists(os.path.join(env.state, "runs", "r2")), "nothing ran")


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

# Runs inside a fresh network namespace (unshare -n): brings lo up, starts a
# real sshd on 127.0.0.1 (a free port of the namespace), runs each phase's
# irp command, snapshots the firewall after it, and always stops sshd. Both
# sshd and irp are killed by the kernel if this helper dies (PDEATHSIG), so
# nothing outlives a timeout. Prints one JSON object.
SSH_HELPER = r'''import ctypes, json, os, signal, socket, subprocess, sys, time
cfg = json.load(open(sys.argv[1]))
libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
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
        p = subprocess.run(argv, capture_output=True, text=True, timeout=cfg["timeout"],
                           preexec_fn=die_with_parent, errors="replace")
        shown = ""
        for cmd in ph["show"]:
            q = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            shown += "$ %s\n%s%s" % (" ".join(cmd), q.stdout, q.stderr)
        out["phases"].append({"name": ph["name"], "code": p.returncode, "out": p.stdout, "err": p.stderr,
                              "shown": shown})
finally:
    sshd.terminate()
    try:
        sshd.wait(5)
    except subprocess.TimeoutExpired:
        sshd.kill()
        sshd.wait()
    log.close()
print(json.dumps(out))
'''

SSH_PB = '''local blockip = require "blockip"
local isolate = require "isolate"
-- -F /dev/null and IdentitiesOnly: no ~/.ssh/config, no agent keys
local ssh = { "-p", "{{port}}", "-i", "{{key}}", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
              "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-F", "/dev/null" }
return playbook { id = "ssh-%(m)s", title = "T", inputs = { port = { required = true }, key = { required = true } },
  steps = {
%(steps)s
  } }
'''

SSH_CONTAIN = '''    blockip.firewall { id = "block", host = "root@127.0.0.1", addr = "203.0.113.7", method = "%(m)s",
                       ssh_options = ssh },
    blockip.firewall { id = "block6", host = "root@127.0.0.1", addr = "2001:db8::/32", method = "%(m)s",
                       ssh_options = ssh },
    isolate.firewall { id = "iso", host = "root@127.0.0.1", allow = { "127.0.0.1", "2001:db8::5" },
                       method = "%(m)s", ssh_options = ssh },'''

SSH_RELEASE = '''    isolate.release { id = "release", host = "root@127.0.0.1", method = "%(m)s", ssh_options = ssh },'''


def sshd_binary():
    found = shutil.which("sshd")
    if not found and os.access("/usr/sbin/sshd", os.X_OK):
        found = "/usr/sbin/sshd"
    return found


def test_ssh_live_isolate_and_blockip_against_a_local_sshd(env):
    """isolate.firewall / isolate.release and blockip.firewall over ssh, for
    real: a throwaway sshd on 127.0.0.1 inside a fresh network namespace,
    irp in the same namespace connecting as root@127.0.0.1 with a throwaway
    key; nftables, and iptables/ip6tables when installed. The rules are read
    back with nft / iptables in the namespace. Skipped (passes) without sshd,
    ssh, nft or network namespaces."""
    clean(env)
    import harness
    sshd = sshd_binary()
    if not sshd or not shutil.which("ssh") or not shutil.which("ssh-keygen") or not shutil.which("nft") or \
            not shutil.which("unshare") or \
            subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("       (skipped: no sshd/ssh (openssh-server), no nft, or no network namespaces here)")
        return
    ipt = bool(shutil.which("iptables") and shutil.which("ip6tables"))
    d = env.dir
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "irp-e2e", "-f", os.path.join(d, name)],
                       check=True, capture_output=True, timeout=30)
    shutil.copy(os.path.join(d, "client_key.pub"), os.path.join(d, "authorized_keys"))
    conf = os.path.join(d, "sshd_config")
    sshd_config = "\n".join([
        "ListenAddress 127.0.0.1", "Port @PORT@", "HostKey %s/host_key" % d,
        "PermitRootLogin prohibit-password", "AuthorizedKeysFile %s/authorized_keys" % d,
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "StrictModes no", "UsePAM no",
        "PrintMotd no", "PidFile %s/sshd.pid" % d, ""])
    irp = os.path.abspath(harness.IRP)
    key = os.path.join(d, "client_key")
    methods = ["nftables"] + (["iptables"] if ipt else [])
    phases = []
    for m in methods:
        show = [["nft", "list", "ruleset"]] if m == "nftables" else [["iptables", "-S"], ["ip6tables", "-S"]]
        for kind, steps in (("contain", SSH_CONTAIN), ("release", SSH_RELEASE)):
            run = "%s-%s" % (m, kind)
            pb = env.write(run + ".lua", SSH_PB % {"m": m, "steps": steps % {"m": m}})
            phases.append({"name": run, "show": show,
                           "argv": [irp, "run", pb, "--yes", "--state-dir", env.state, "--run-id", run,
                                    "-v", "port=@PORT@", "-v", "key=" + key]})
    cfg = env.write("ssh.json", json.dumps({
        "sshd": sshd, "config": conf, "sshd_config": sshd_config, "log": os.path.join(d, "sshd.log"),
        "timeout": 60 * harness.SLACK, "phases": phases}))
    helper = env.write("ssh_helper.py", SSH_HELPER)
    # sshd insists on its privilege separation directory (systemd makes it)
    made_privsep = not os.path.isdir("/run/sshd")
    if made_privsep:
        os.makedirs("/run/sshd", mode=0o755)
    try:
        p = subprocess.run(["unshare", "-n", sys.executable, helper, cfg], capture_output=True, text=True,
                           env=env.env, cwd=d, timeout=(60 * len(phases) + 30) * harness.SLACK)
    finally:
        if made_privsep:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass
    log_path = os.path.join(d, "sshd.log")
    check(p.returncode == 0, "the helper ran (sshd log: %s)" %
          (open(log_path).read() if os.path.exists(log_path) else "none"), p)
    check(harness.no_process_with(conf), "sshd was stopped")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    port = res["port"]
    ph = {x["name"]: x for x in res["phases"]}
    for name, x in ph.items():
        check(x["code"] == 0, "irp run %s succeeds: %s\n%s\n%s" % (name, x["out"], x["err"], x["shown"]))
        events = env.events(run=name)
        check("step.failed" not in events, "no step failed in %s: %r" % (name, events))
        check(env.record("run.finished", run=name)["data"]["status"] == "succeeded", "%s succeeded" % name)
        execs = [r["data"] for r in env.journal(name) if r["type"] == "step.exec"]
        check(execs, "%s ran commands" % name)
        want = ("ssh -o BatchMode=yes -p %d -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                % (port, key))
        for e in execs:
            check(e["command"].startswith(want) and " root@127.0.0.1 -- " in e["command"]
                  and e["simulated"] is False and e["code"] == 0, "the journal records the ssh command: %r" % e)
    log = open(log_path).read()
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
