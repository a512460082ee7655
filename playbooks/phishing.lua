-- playbooks/phishing.lua: a reported phishing e-mail (credential phishing).
--
-- The flow: keep the reported message as evidence and pull its indicators
-- (envelope sender, link domain, SPF/DKIM/DMARC verdicts), find every mailbox
-- that received it, have an analyst confirm it, then contain: purge it from
-- every mailbox, block the sender at the MTA and the link at the web proxy,
-- find who opened the link in the proxy logs and lock those accounts (with an
-- approval) until the helpdesk has reset their credentials. Eradication looks
-- for mail filters the attackers may have planted and asks for a takedown.
--
-- Written for a self-hosted stack: Postfix + Dovecot on mail_host, Squid on
-- proxy_host, FreeIPA for accounts. On Microsoft 365 or Google Workspace the
-- flow is the same; replace the commands in the steps (purge: compliance
-- search purge / gam; block: tenant block list; lock: disable the account and
-- revoke sessions).
--
-- Site prerequisites:
-- * Key-based SSH (BatchMode) from the irp machine to mail_host and proxy_host,
--   with sudo for doveadm, postmap, tee, sort (mail_host) and grep, tee, sort,
--   squid (proxy_host).
-- * Postfix checks a map irp owns, before other sender checks:
--     smtpd_sender_restrictions = check_sender_access hash:/etc/postfix/irp_sender_access, ...
-- * Squid denies a domain list irp owns, before any allow rule:
--     acl irp_blocked dstdomain "/etc/squid/irp_blocked_domains.acl"
--     http_access deny irp_blocked
--   and logs in its native format with the authenticated user name (the user
--   names are the FreeIPA user names).
-- * A Kerberos ticket on the irp machine for an account allowed to run
--   `ipa user-disable` (kinit with a keytab).
--
-- Notifier names used: slack-ir, pagerduty-secops.

-- Helpers -------------------------------------------------------------------

-- ssh joins its arguments with spaces and the remote shell parses them again.
-- A Message-ID or sender address is written by the attacker: every remote
-- argument that is not a plain word is single-quoted, so it stays data.
local function shq(s)
  s = tostring(s)
  if s:match("^[%w%._/:=@,+%-]+$") then return s end
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

local function ssh(host, ...)
  local argv = { "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host }
  for i = 1, select("#", ...) do argv[#argv + 1] = shq((select(i, ...))) end
  return argv
end

local function exec(ctx, argv, opts)
  for k, v in pairs(opts or {}) do argv[k] = v end
  return ctx.exec(argv)
end

local function last_line(text)
  local last = ""
  for line in (text or ""):gmatch("[^\r\n]+") do last = line end
  return last
end

local function status_of(ctx, id)
  local s = ctx.steps[id]
  return s and s.status
end

local function result_of(ctx, id)
  local s = ctx.steps[id]
  return (s and type(s.result) == "table") and s.result or {}
end

local function valid_host(h) return type(h) == "string" and #h <= 253 and h:match("^[%w][%w%.%-]*$") ~= nil end
local function valid_domain(d) return valid_host(d) and d:match("%.%a%a+$") ~= nil end
local function valid_address(a)
  if type(a) ~= "string" or #a > 254 then return false end
  local localpart, domain = a:match("^([%w%.!#%%&*+/=?^_`{|}~%-]+)@([%w%.%-]+)$")
  return localpart ~= nil and valid_domain(domain)
end
local function valid_user(u) return type(u) == "string" and #u <= 64 and u:match("^[%w][%w%._%-]*$") ~= nil end

-- Domains that must never be blocked wholesale: ours, and the big platforms
-- whose pages phishers abuse (a form on docs.google.com is reported by URL to
-- the platform, not by blocking the platform).
local PROTECTED = {
  "google.com", "googleusercontent.com", "microsoft.com", "office.com", "live.com",
  "sharepoint.com", "onedrive.com", "dropbox.com", "box.com", "github.com",
  "amazonaws.com", "cloudfront.net", "apple.com", "icloud.com", "salesforce.com",
}
local function protected_domain(ctx, d)
  d = d:lower()
  local list = { (ctx.vars.our_domain or ""):lower() }
  for _, p in ipairs(PROTECTED) do list[#list + 1] = p end
  for _, p in ipairs(list) do
    if p ~= "" and (d == p or d:sub(-(#p + 1)) == "." .. p) then return p end
  end
  return nil
end

-- The indicators: an input wins over what was read from the message. Each
-- returns the value (or nil when unknown) and, for a protected one, the
-- protected domain it falls under.
local function sender_of(ctx)
  local s = ctx.vars.sender
  if s == "" then s = result_of(ctx, "fetch-message").sender end
  if type(s) ~= "string" or not valid_address(s) then return nil end
  s = s:lower()
  return s, protected_domain(ctx, s:match("@(.+)$"))
end
local function domain_of(ctx)
  local d = ctx.vars.url_domain
  if d == "" then d = result_of(ctx, "fetch-message").domain end
  if type(d) ~= "string" or not valid_domain(d) then return nil end
  d = d:lower()
  return d, protected_domain(ctx, d)
end
-- What may be blocked automatically: known and not protected.
local function blockable_sender(ctx)
  local s, p = sender_of(ctx)
  return (s and not p) and s or nil
end
local function blockable_domain(ctx)
  local d, p = domain_of(ctx)
  return (d and not p) and d or nil
end

-- Users who opened the link, from find-clicks (a list of names), or {}.
local function clickers(ctx)
  local list = result_of(ctx, "find-clicks").users
  return type(list) == "table" and list or {}
end

-- Headers of an RFC 5322 message: unfolded, names lower-cased; repeated
-- headers keep the first (the topmost, added last, by our own MTA).
local function parse_headers(msg)
  local head = msg:match("^(.-)\r?\n\r?\n") or msg
  head = head:gsub("\r?\n[ \t]+", " ")
  local h = {}
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w%-]+):%s*(.-)%s*$")
    if k and h[k:lower()] == nil then h[k:lower()] = v end
  end
  return h
end

-- The first link's host in the message. Quoted-printable soft line breaks and
-- "=3D" are undone first; base64 bodies are not decoded (pass -v url_domain).
local function first_link_host(msg)
  local body = msg:gsub("=\r?\n", ""):gsub("=3[Dd]", "=")
  return body:match("[Hh][Tt][Tt][Pp][Ss]?://([%w%.%-]+)")
end

-- Rows of `doveadm -f tab search -A`: a header line, then user, mailbox guid, uid.
local function parse_search(text)
  local rows, users, seen = 0, {}, {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    local user, guid, uid = line:match("^([^\t]+)\t(%x+)\t(%d+)$")
    if user then
      rows = rows + 1
      if not seen[user] then seen[user] = true; users[#users + 1] = user end
    end
  end
  return rows, users
end

-- The playbook ----------------------------------------------------------------

return playbook {
  id = "phishing",
  title = "Reported phishing e-mail",
  version = "1.0.0",
  severity = "high",
  description = "A user reported a phishing e-mail. Purge it from every mailbox, block the "
    .. "sender and the link, find who opened the link and lock and reset their accounts.",
  references = {
    "NIST SP 800-61r2, Computer Security Incident Handling Guide",
    "CISA/NSA Phishing Guidance: Stopping the Attack Cycle at Phase One",
    "AWS Incident Response Playbooks: IRP-CredCompromise",
  },
  tags = { "security", "phishing", "email", "credentials" },

  phases = { "detection", "containment", "eradication", "recovery", "post-incident" },

  inputs = {
    message_id = { required = true,
      doc = "Message-ID header of the reported e-mail, with the angle brackets: <abc@example.net>" },
    reporter = { required = true, doc = "Mail account (Dovecot user) of the person who reported it" },
    mailbox = { default = "INBOX", doc = "Folder of the reporter's account holding the reported copy" },
    sender = { default = "", doc = "Envelope sender to block (default: the message's Return-Path)" },
    url_domain = { default = "", doc = "Domain of the phishing site (default: the first link in the message)" },
    our_domain = { default = "example.com", doc = "Our own mail domain: never blocked" },
    mail_host = { default = "mail-01", doc = "Postfix + Dovecot server" },
    proxy_host = { default = "proxy-01", doc = "Squid proxy server" },
    proxy_log = { default = "/var/log/squid/access.log", doc = "Squid access log on proxy_host" },
  },

  objectives = { contain_within = "1h" },

  escalation = {
    { notify = { "slack-ir" } },
    { after = "1h", notify = { "pagerduty-secops" } },
  },

  steps = {
    -- Detection -------------------------------------------------------------

    step "check-inputs" {
      phase = "detection",
      title = "Check the inputs for message {{message_id}}",
      doc = "Pure Lua. The Message-ID and addresses end up in commands on the mail server: "
        .. "anything that does not look like one stops the run here.",
      timeout = "10s", idempotent = true,
      run = function(ctx)
        local v = ctx.vars
        if #v.message_id > 250 or not v.message_id:match("^<[^<>%s\"'\\]+@[^<>%s\"'\\]+>$") then
          ctx.fail("input message_id=" .. v.message_id .. " is not a Message-ID such as <abc@example.net>")
        end
        if not valid_user(v.reporter) and not valid_address(v.reporter) then
          ctx.fail("input reporter=" .. v.reporter .. " is not a mail account name")
        end
        if #v.mailbox > 200 or v.mailbox:find("[%c\"\\]") then
          ctx.fail("input mailbox=" .. v.mailbox .. " is not a folder name")
        end
        if v.sender ~= "" and not valid_address(v.sender) then
          ctx.fail("input sender=" .. v.sender .. " is not an e-mail address")
        end
        if v.url_domain ~= "" and not valid_domain(v.url_domain) then
          ctx.fail("input url_domain=" .. v.url_domain .. " is not a domain name (no scheme, no path)")
        end
        for _, name in ipairs({ "mail_host", "proxy_host" }) do
          if not valid_host(v[name]) then ctx.fail("input " .. name .. "=" .. v[name] .. " is not a host name") end
        end
        if v.proxy_log:sub(1, 1) ~= "/" then ctx.fail("input proxy_log must be an absolute path") end
        return { message_id = v.message_id }
      end,
    },

    step "fetch-message" {
      phase = "detection",
      title = "Keep the reported message as evidence and read its indicators",
      doc = "Fetches the reporter's copy, stores it as an artifact (with its SHA-256) and "
        .. "extracts sender, subject, authentication results and the first link.",
      timeout = "2m", retries = 2, backoff = "10s", idempotent = true,
      on_failure = "continue", -- the copy may be gone; -v sender= / url_domain= still work
      run = function(ctx)
        local v = ctx.vars
        local r = exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "fetch", "-u", v.reporter, "text",
          "mailbox", v.mailbox, "header", "Message-ID", v.message_id), { timeout = "60s" })
        -- doveadm's pager format: "text:" line, the message, a form feed after each record.
        local msg = r.stdout:gsub("^text:%s*\r?\n", ""):gsub("\f%s*$", "")
        if not msg:find("\n", 1, true) then
          ctx.fail("no message " .. v.message_id .. " in " .. v.reporter .. "/" .. v.mailbox)
        end
        local a = ctx.artifact("reported-message.eml", msg)
        local h = parse_headers(msg)
        local auth = h["authentication-results"] or ""
        local res = {
          sender = (h["return-path"] or ""):match("<([^<>]*)>") or "unknown",
          from = h["from"] or "unknown",
          subject = h["subject"] or "(none)",
          domain = first_link_host(msg) or "unknown",
          spf = auth:match("spf=(%a+)") or "none",
          dkim = auth:match("dkim=(%a+)") or "none",
          dmarc = auth:match("dmarc=(%a+)") or "none",
          eml_sha256 = a.sha256,
        }
        ctx.log("indicators of the reported message", res)
        return res
      end,
      drill = {
        code = 0,
        stdout = "text:\n"
          .. "Return-Path: <billing@micros0ft-support.net>\n"
          .. "Authentication-Results: mail-01.example.com; spf=pass smtp.mailfrom=micros0ft-support.net;\n"
          .. "\tdkim=none; dmarc=fail header.from=microsoft.com\n"
          .. "From: \"Microsoft 365\" <no-reply@microsoft.com>\n"
          .. "To: alice@example.com\n"
          .. "Subject: Your mailbox is almost full - action required\n"
          .. "Message-ID: <20261125.4411@micros0ft-support.net>\n"
          .. "Content-Type: text/html; charset=utf-8\n"
          .. "Content-Transfer-Encoding: quoted-printable\n"
          .. "\n"
          .. "<p>Your mailbox has reached 98% of its quota.</p>\n"
          .. "<a href=3D\"https://login.micros0ft-support.net/owa/?u=3Dalice\">Upgrade storage</a>\n",
      },
    },

    step "indicators" {
      phase = "detection",
      title = "Settle the sender and the site to block",
      doc = "Pure Lua: an input (-v sender=, -v url_domain=) wins over what was read from the "
        .. "message. Later steps and prompts use these values, so they always agree.",
      timeout = "10s", idempotent = true,
      run = function(ctx)
        local function describe(value, protected)
          if not value then return "unknown (nothing will be blocked)" end
          if protected then return value .. " (under protected " .. protected .. ": NOT blocked automatically)" end
          return value
        end
        local s, sp = sender_of(ctx)
        local d, dp = domain_of(ctx)
        local res = {
          sender = s or "unknown", domain = d or "unknown",
          sender_plan = describe(s, sp), domain_plan = describe(d, dp),
        }
        ctx.log("indicators to block", res)
        return res
      end,
    },

    step "find-recipients" {
      phase = "detection",
      title = "Find every mailbox that received {{message_id}}",
      timeout = "5m", retries = 2, backoff = "10s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local r = exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "-f", "tab", "search", "-A",
          "header", "Message-ID", v.message_id), { timeout = "4m" })
        local rows, users = parse_search(r.stdout)
        ctx.artifact("recipients.tsv", r.stdout)
        return { copies = rows, count = #users, users = table.concat(users, ", ") }
      end,
      drill = {
        code = 0,
        stdout = "username\tmailbox-guid\tuid\n"
          .. "alice\t8d0f2b1c5a4e3d2c1b0a99887766aabb\t5521\n"
          .. "bob\t1a2b3c4d5e6f708192a3b4c5d6e7f809\t918\n"
          .. "carol\t0f1e2d3c4b5a69788796a5b4c3d2e1f0\t2207\n"
          .. "dave\tfedcba9876543210fedcba9876543210\t77\n",
      },
    },

    step "confirm-phishing" {
      phase = "detection",
      title = "Confirm that the reported message is phishing",
      timeout = "15m",
      manual = [[
Reported by {{reporter}}; {{steps.find-recipients.result.count}} mailbox(es) received it ({{steps.find-recipients.result.users}}).
  Subject:  {{steps.fetch-message.result.subject}}
  From:     {{steps.fetch-message.result.from}}
  Authentication: SPF {{steps.fetch-message.result.spf}}, DKIM {{steps.fetch-message.result.dkim}}, DMARC {{steps.fetch-message.result.dmarc}}
  Sender to block: {{steps.indicators.result.sender_plan}}
  Site to block:   {{steps.indicators.result.domain_plan}}
("unknown" fields: the message could not be read; look at it in the reporter's mailbox.)

Decide:
  1. Open the link ONLY in an isolated analysis browser or a private URL scanner: does it ask for credentials or serve a download?
  2. Does the From name/domain impersonate us or a supplier? A DMARC fail with a look-alike envelope domain is a strong sign.
  3. Are the sender and link domain above the right ones to block? If not, stop (answer failed) and run again with -v sender=... -v url_domain=...

Answer "done: <verdict, e.g. credential phishing imitating M365>" to start containment.
If it is NOT malicious, answer "failed: not phishing - <why>": the run stops and records your reason; thank the reporter anyway.]],
    },

    -- Containment -----------------------------------------------------------

    step "purge-message" {
      phase = "containment",
      title = "Purge {{message_id}} from all {{steps.find-recipients.result.count}} mailbox(es)",
      doc = "Expunges every copy in every mailbox (permanent: the reporter's copy is already "
        .. "kept as evidence), then searches again to prove none is left. Repeating it is harmless.",
      approval = "incident-commander",
      timeout = "10m", retries = 2, backoff = "15s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local v = ctx.vars
        exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "expunge", "-A",
          "header", "Message-ID", v.message_id), { timeout = "4m" })
        local r = exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "-f", "tab", "search", "-A",
          "header", "Message-ID", v.message_id), { timeout = "4m" })
        local rows, users = parse_search(r.stdout)
        if rows > 0 then
          ctx.fail(string.format("%d copies are still there after the purge (%s)", rows, table.concat(users, ", ")))
        end
        return { purged_from = result_of(ctx, "find-recipients").count or 0, remaining = 0 }
      end,
      drill = { code = 0, stdout = "" },
    },

    step "block-sender" {
      phase = "containment",
      title = "Reject mail from the sender at the MTA",
      doc = "Adds the envelope sender to irp's own Postfix access map (deduplicated), rebuilds "
        .. "it and looks the address up to prove it. Never blocks our own domain.",
      when = function(ctx) return blockable_sender(ctx) ~= nil end,
      timeout = "2m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue", -- the URL block matters more; a sender block is cheap to redo
      run = function(ctx)
        local v = ctx.vars
        local sender = blockable_sender(ctx)
        if not sender then ctx.fail("no sender that may be blocked (unknown or protected)") end
        local map = "/etc/postfix/irp_sender_access"
        exec(ctx, ssh(v.mail_host, "sudo", "tee", "-a", map),
          { stdin = sender .. " REJECT message refused (phishing)\n", timeout = "30s" })
        exec(ctx, ssh(v.mail_host, "sudo", "sort", "-u", "-o", map, map), { timeout = "30s" })
        exec(ctx, ssh(v.mail_host, "sudo", "postmap", "hash:" .. map), { timeout = "30s" })
        local r = exec(ctx, ssh(v.mail_host, "sudo", "postmap", "-q", sender, "hash:" .. map), { timeout = "30s" })
        if not r.stdout:find("REJECT", 1, true) then
          ctx.fail("postmap -q does not find " .. sender .. " after the update")
        end
        return { blocked = sender }
      end,
      drill = { code = 0, stdout = "REJECT message refused (phishing)\n" },
    },

    step "block-url" {
      phase = "containment",
      title = "Block the phishing site at the web proxy",
      doc = "Adds .<domain> (the domain and its subdomains) to irp's own Squid deny list, "
        .. "deduplicated, then checks the configuration and reloads Squid.",
      when = function(ctx) return blockable_domain(ctx) ~= nil end,
      timeout = "2m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "escalate", -- an open credential-harvesting site is the live risk
      run = function(ctx)
        local v = ctx.vars
        local domain = blockable_domain(ctx)
        if not domain then ctx.fail("no site domain that may be blocked (unknown or protected)") end
        local acl = "/etc/squid/irp_blocked_domains.acl"
        exec(ctx, ssh(v.proxy_host, "sudo", "tee", "-a", acl), { stdin = "." .. domain .. "\n", timeout = "30s" })
        exec(ctx, ssh(v.proxy_host, "sudo", "sort", "-u", "-o", acl, acl), { timeout = "30s" })
        exec(ctx, ssh(v.proxy_host, "sudo", "squid", "-k", "parse"), { timeout = "60s" })
        exec(ctx, ssh(v.proxy_host, "sudo", "squid", "-k", "reconfigure"), { timeout = "60s" })
        return { blocked = "." .. domain }
      end,
      drill = { code = 0, stdout = "" },
    },

    step "block-by-hand" {
      phase = "containment",
      title = "Block the phishing page by hand: it sits on a protected domain",
      when = function(ctx)
        local d, p = domain_of(ctx)
        return d ~= nil and p ~= nil
      end,
      timeout = "30m",
      manual = [[
The phishing page is on {{steps.indicators.result.domain}}, part of a platform we cannot block wholesale.
  1. On {{proxy_host}}, block the exact page: an acl of type url_regex (or urlpath_regex) matching its path, denied before the allow rules; squid -k parse && squid -k reconfigure.
  2. Report the page to the platform's abuse team (Google Forms/Docs, SharePoint, Dropbox ... all have a "report abuse" link or form).
Answer "done: <what you blocked, report reference>".]],
    },

    step "find-clicks" {
      phase = "containment",
      title = "Find who opened the phishing link in the proxy log",
      doc = "HTTPS through a proxy without TLS inspection shows only CONNECT host:443, so "
        .. "anyone who reached the host is treated as having typed their password.",
      -- On a protected platform the host name alone would match every user of it.
      when = function(ctx) return blockable_domain(ctx) ~= nil end,
      timeout = "5m", retries = 1, backoff = "10s", idempotent = true,
      on_failure = "continue", -- people look by hand in review-clicks
      run = function(ctx)
        local v = ctx.vars
        local domain = blockable_domain(ctx)
        if not domain then ctx.fail("no site domain known (pass -v url_domain=...)") end
        local r = exec(ctx, ssh(v.proxy_host, "sudo", "grep", "-h", "-F", "--", domain, v.proxy_log),
          { timeout = "4m", check = false })
        if r.code > 1 then -- grep: 0 found, 1 nothing found, 2 trouble
          ctx.fail("grep on " .. v.proxy_host .. " failed (code " .. r.code .. "): " .. last_line(r.stderr))
        end
        local users, seen, anon, hits = {}, {}, {}, 0
        for line in r.stdout:gmatch("[^\r\n]+") do
          -- native format: time elapsed client code/status bytes method URL user hierarchy type
          local f = {}
          for w in line:gmatch("%S+") do f[#f + 1] = w end
          local url, user = f[7] or "", f[8] or "-"
          local host = (url:match("^%a+://([^/:]+)") or url:match("^([^/:]+)") or ""):lower()
          if host == domain or host:sub(-(#domain + 1)) == "." .. domain then
            hits = hits + 1
            if user ~= "-" and valid_user(user) then
              if not seen[user] then seen[user] = true; users[#users + 1] = user end
            elseif f[3] and not seen[f[3]] then
              seen[f[3]] = true; anon[#anon + 1] = f[3]
            end
          end
        end
        ctx.artifact("proxy-hits-" .. domain .. ".log", r.stdout)
        return {
          hits = hits, count = #users, users = users,
          names = (#users > 0) and table.concat(users, ", ") or "nobody",
          unattributed = (#anon > 0) and table.concat(anon, ", ") or "none",
        }
      end,
      drill = {
        code = 0,
        stdout = "1764060581.114    412 10.1.4.23 TCP_TUNNEL/200 6210 CONNECT login.micros0ft-support.net:443 alice HIER_DIRECT/203.0.113.45 -\n"
          .. "1764060903.870    388 10.1.7.91 TCP_TUNNEL/200 5876 CONNECT login.micros0ft-support.net:443 bob HIER_DIRECT/203.0.113.45 -\n"
          .. "1764061022.402    301 10.1.9.12 TCP_TUNNEL/200 4410 CONNECT login.micros0ft-support.net:443 - HIER_DIRECT/203.0.113.45 -\n",
      },
    },

    step "review-clicks" {
      phase = "containment",
      title = "Check the list of users who opened the link",
      timeout = "15m",
      manual = [[
Proxy-log search: {{steps.find-clicks.status}}.
  Opened the link:         {{steps.find-clicks.result.names}}
  Without a user name, IP: {{steps.find-clicks.result.unattributed}}  (map IPs to people with the DHCP/VPN logs)
The proxy does not see phones, home networks or webmail on personal devices:
  - ask the recipients ({{steps.find-recipients.result.users}}) whether they opened the link or typed a password;
  - if find-clicks failed or was skipped, search {{proxy_log}} on {{proxy_host}} by hand for the domain.
The next step locks the accounts listed above. Lock anyone else you find the same way by hand (ipa user-disable <user>) and name them in your note.
Answer "done: <extra users, or none>".]],
    },

    step "lock-accounts" {
      phase = "containment",
      title = "Lock the accounts that opened the link: {{steps.find-clicks.result.names}}",
      doc = "Disables each FreeIPA account until the helpdesk has reset it: an attacker "
        .. "holding the password cannot log in meanwhile. Disabling twice is harmless.",
      when = function(ctx) return #clickers(ctx) > 0 end,
      approval = "incident-commander",
      timeout = "5m", retries = 1, backoff = "10s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local locked, failed = {}, {}
        for _, user in ipairs(clickers(ctx)) do
          local r = ctx.exec { "ipa", "user-disable", user, timeout = "60s", check = false }
          if r.code == 0 or (r.stderr or ""):find("already disabled", 1, true) then
            locked[#locked + 1] = user
          else
            failed[#failed + 1] = user .. " (" .. last_line(r.stderr) .. ")"
          end
        end
        ctx.log("accounts locked", { locked = locked, failed = failed })
        if #failed > 0 then
          ctx.fail("could not lock: " .. table.concat(failed, "; ") .. "; locked: "
            .. ((#locked > 0) and table.concat(locked, ", ") or "none"))
        end
        return { locked = table.concat(locked, ", "), count = #locked }
      end,
      drill = {
        code = 0,
        stdout = "------------------------------\nDisabled user account \"alice\"\n------------------------------\n",
      },
    },

    step "hunt-campaign" {
      phase = "containment",
      title = "Look for other messages from the same sender",
      doc = "Runs after the purge, so every hit is a variant of the campaign (another "
        .. "Message-ID from the same sender address).",
      -- A spoofed protected sender would match all of its genuine mail.
      when = function(ctx) return blockable_sender(ctx) ~= nil end,
      timeout = "5m", retries = 1, backoff = "10s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local sender = blockable_sender(ctx)
        if not sender then ctx.fail("no sender that may be searched for (unknown or protected)") end
        local r = exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "-f", "tab", "search", "-A",
          "header", "Return-Path", sender), { timeout = "4m" })
        local rows, users = parse_search(r.stdout)
        return { variants = rows, count = #users, users = (#users > 0) and table.concat(users, ", ") or "none" }
      end,
      drill = { code = 0, stdout = "username\tmailbox-guid\tuid\n" },
    },

    step "purge-variants" {
      phase = "containment",
      title = "Deal with {{steps.hunt-campaign.result.variants}} more message(s) from the same sender",
      when = function(ctx) return (result_of(ctx, "hunt-campaign").variants or 0) > 0 end,
      timeout = "30m",
      manual = [[
{{steps.hunt-campaign.result.variants}} more message(s) from {{steps.indicators.result.sender}} are in the mailboxes of {{steps.hunt-campaign.result.users}}.
On {{mail_host}}, list their Message-IDs:
  sudo doveadm fetch -A 'hdr.message-id hdr.subject' header Return-Path {{steps.indicators.result.sender}}
Check one or two, then either purge them all by sender (sudo doveadm expunge -A header Return-Path {{steps.indicators.result.sender}}) or start one run of this playbook per Message-ID.
Answer "done: <what you purged>".]],
    },

    -- Eradication -----------------------------------------------------------

    step "check-mail-filters" {
      phase = "eradication",
      title = "Look for mail filters planted in the locked accounts",
      doc = "Attackers who log in to a mailbox often add a rule that forwards or hides mail. "
        .. "Lists each account's Sieve scripts and keeps them as evidence.",
      when = function(ctx) return #clickers(ctx) > 0 end,
      timeout = "5m", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local flagged = {}
        for _, user in ipairs(clickers(ctx)) do
          local r = exec(ctx, ssh(v.mail_host, "sudo", "doveadm", "sieve", "list", "-u", user),
            { timeout = "60s", check = false })
          if r.code == 0 and r.stdout:find("%S") then
            ctx.artifact("sieve-" .. user .. ".txt", r.stdout)
            local active = r.stdout:match("([^\r\n]-)%s+ACTIVE") or "none active"
            flagged[#flagged + 1] = user .. " (" .. active .. ")"
          end
        end
        return { count = #flagged, accounts = (#flagged > 0) and table.concat(flagged, ", ") or "none" }
      end,
      drill = { code = 0, stdout = "roundcube ACTIVE\n" },
    },

    step "reset-credentials" {
      phase = "eradication",
      title = "Reset the credentials of {{steps.find-clicks.result.names}}",
      when = function(ctx) return #clickers(ctx) > 0 end,
      timeout = "4h",
      manual = [[
For each user who opened the link ({{steps.find-clicks.result.names}}; locking them: {{steps.lock-accounts.status}}), the helpdesk:
  1. Verifies the person by calling back a number from the HR directory (never one given in e-mail or chat).
  2. Sets a temporary password with them on the phone (ipa passwd <user>) and re-enables the account (ipa user-enable <user>); the user changes it at first login.
  3. Removes and re-enrolls their OTP tokens (ipa otptoken-find --owner=<user>) if they may have typed a code into the fake page.
  4. Reviews their mail filters: accounts with Sieve scripts: {{steps.check-mail-filters.result.accounts}}. Delete forwarding or hiding rules they did not create (doveadm sieve delete -u <user> <script>).
  5. Checks logins since the click (IPA/Kerberos and mail logs) from unusual places; any found: open a separate credential-compromise incident.
Answer "done: <accounts reset>".]],
    },

    step "request-takedown" {
      phase = "eradication",
      title = "Ask for the phishing site to be taken down",
      timeout = "1h",
      manual = [[
For the site at {{steps.indicators.result.domain}}:
  1. Look up the hosting provider and registrar (whois, and the IP's network owner) and send both an abuse report with the URL and the evidence (the .eml artifact of this run).
  2. Report the URL to Google Safe Browsing and your mail/web filter vendor, so other organisations are protected too.
  3. If a brand is impersonated (ours or a supplier's), tell its security team.
Answer "done: <where you reported it, ticket numbers>".]],
    },

    -- Recovery --------------------------------------------------------------

    step "close-the-loop" {
      phase = "recovery",
      title = "Tell the reporter and the recipients",
      timeout = "1h",
      manual = [[
  1. Thank {{reporter}}: reporting is what made this response possible. Tell them what was done.
  2. Tell the recipients ({{steps.find-recipients.result.users}}) that the message was removed and why, and whom to call if they typed anything.
  3. If many people received it, post a short warning with a screenshot to the whole organisation.
  4. Put a review date (90 days) on the sender and URL blocks, so the lists stay short.
Answer "done".]],
    },

    -- Post-incident ---------------------------------------------------------

    step "summary" {
      phase = "post-incident",
      title = "Write the incident summary",
      doc = "Pure Lua over the recorded results.",
      timeout = "30s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local m = result_of(ctx, "fetch-message")
        local rec = result_of(ctx, "find-recipients")
        local clicks = result_of(ctx, "find-clicks")
        local lines = {
          "# Phishing " .. v.message_id,
          "",
          "- run: " .. tostring(ctx.run_id or "(none)") .. (ctx.drill and " (drill)" or ""),
          "- reported by: " .. v.reporter,
          "- subject: " .. tostring(m.subject or "unknown"),
          "- sender blocked: " .. tostring(result_of(ctx, "block-sender").blocked or "no"),
          "- site blocked: " .. tostring(result_of(ctx, "block-url").blocked or "no"),
          "- received by: " .. tostring(rec.count or "?") .. " mailbox(es); purge: "
            .. tostring(status_of(ctx, "purge-message") or "not run"),
          "- opened the link: " .. tostring(clicks.names or "unknown")
            .. "; unattributed: " .. tostring(clicks.unattributed or "unknown"),
          "- accounts locked: " .. tostring(result_of(ctx, "lock-accounts").locked or "none"),
          "- evidence: reported-message.eml sha256 " .. tostring(m.eml_sha256 or "-"),
        }
        local text = table.concat(lines, "\n") .. "\n"
        local a = ctx.artifact("summary.md", text)
        ctx.notify("slack-ir", "Phishing " .. v.message_id .. ": contained, summary stored", { sha256 = a.sha256 })
        return { summary_sha256 = a.sha256 }
      end,
    },

    step "review" {
      phase = "post-incident",
      title = "Review the response and the filters",
      timeout = "1h",
      manual = [[
Within 5 business days, with `irp report` of this run:
  - time from the first delivery to the report, and from the report to purge (objective: 1 hour);
  - why the mail filter let it through (SPF/DKIM/DMARC results, look-alike domain, new domain age) and what rule would catch the next one;
  - whether MFA held for the users who typed a password;
  - what this playbook should do differently.
Answer "done: <action items and owners>".]],
    },
  },
}
