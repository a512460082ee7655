"""End-to-end tests of plugins: require inside the sandbox, the search path,
load-time validation naming the playbook's line, every shipped plugin's drill
path (with assertions on the argv and URLs it builds), --attach (before /
after / at_end_of, and its errors) and the configuration's attach section.
The live paths are in test_plugins_live.py."""
import json
import os
import shutil
from harness import check


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
    patroni = [c for c in cmds if "patronictl" in c]
    check(patroni[0] == "patronictl -c /etc/patroni/patroni.yml list pg-main -f json" and len(patroni) == 3
          and patroni[2] == patroni[0], "patronictl: list, failover, list: %r" % patroni)
    check(succeeded(env, "patroni") == {"cluster": "pg-main", "leader": "pg-2", "previous": "pg-1",
                                        "failed_over": True}, "patroni result")


def test_shipped_statuspage_drill(env):
    shipped_drill(env, "statuspage")
    check(succeeded(env, "status")["incident"] == "p31zjtct2jer", "incident id")
    urls = [r["data"]["url"] for r in env.journal() if r["type"] == "step.http"]
    check("https://api.status.example/v1/pages/abc/incidents/p31zjtct2jer" in urls, "update url %r" % urls)


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
