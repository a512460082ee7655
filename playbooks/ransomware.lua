-- playbooks/ransomware.lua: ransomware outbreak on one Linux server.
--
-- The flow: confirm the outbreak, cut the host off the network (EDR network
-- containment; the host firewall over SSH if the EDR cannot; people if both
-- fail), protect the backups, preserve evidence, find other hosts with the same
-- indicators, rebuild the host from a known-good image, restore data from the
-- last backup taken before the infection, and close with a timeline for the
-- post-incident review.
--
-- Site prerequisites (a drill exercises the flow, not these; check them on a
-- quiet day with `irp run` against a test host):
--
-- * An `edr` command (input edr_cmd): a thin site wrapper around your EDR's API
--   (CrowdStrike, Defender for Endpoint, SentinelOne ... all differ). Each
--   subcommand prints plain text and exits non-zero when it fails:
--     edr status HOST   "key: value" lines, at least: agent (online|offline),
--                       isolated (yes|no), detections (a count), first_seen
--                       (UTC, "YYYY-MM-DD HH:MM:SS"), verdict, family
--     edr isolate HOST  network containment that keeps the EDR's own channel;
--                       prints "isolation job <id> queued"
--     edr release HOST  lifts the containment; prints "release job <id> queued"
--     edr hunt HOST     other hosts that match HOST's indicators, one per line
--     edr collect HOST  forensic triage package (memory, processes, autoruns,
--                       logs); prints "collection <id> sha256 <hex> stored <url>"
--     edr scan HOST     full scan; prints "scan complete: detections=<n>"
-- * Key-based SSH (BatchMode) from the irp machine to HOST and to backup_host,
--   with sudo for nft (HOST) and restic (backup_host). The irp machine must sit
--   inside mgmt_cidr, or the firewall fallback also cuts irp's own SSH session.
-- * A restic repository on backup_host with this host's snapshots (restic's
--   --host is the host name), readable with the password file given below.
--
-- Notifier names used: slack-ir, pagerduty-secops, pagerduty-ciso.

-- Helpers -------------------------------------------------------------------
-- Plain functions shared by the steps. They only read their arguments, so
-- they behave the same in a live run, in a drill and after a resume.

-- ssh joins its arguments with spaces and the remote shell parses them again:
-- every remote argument that is not a plain word is single-quoted here, so an
-- odd value cannot become shell syntax on the other side.
local function shq(s)
  s = tostring(s)
  if s:match("^[%w%._/:=@,+%-]+$") then return s end
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

-- The argv of `ssh HOST ARGS...`, remote arguments quoted.
local function ssh(host, ...)
  local argv = { "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host }
  for i = 1, select("#", ...) do argv[#argv + 1] = shq((select(i, ...))) end
  return argv
end

-- Adds options (timeout, stdin, check ...) to an argv table and runs it.
local function exec(ctx, argv, opts)
  for k, v in pairs(opts or {}) do argv[k] = v end
  return ctx.exec(argv)
end

-- A host name from an input, checked: it goes into argv of ssh and edr, where
-- a leading '-' would be read as an option.
local function host_input(ctx, name)
  local h = ctx.vars[name] or ""
  if #h > 253 or not h:match("^[%w][%w%.%-]*$") then
    ctx.fail(string.format("input %s=%q is not a host name (letters, digits, '.', '-')", name, h))
  end
  return h
end

-- "key: value" lines into a table with lower-case keys.
local function parse_kv(text)
  local t = {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^%s*([%w_%-]+)%s*:%s*(.-)%s*$")
    if k then t[k:lower()] = v end
  end
  return t
end

local function last_line(text)
  local last = ""
  for line in (text or ""):gmatch("[^\r\n]+") do last = line end
  return last
end

-- "2026-11-20T23:41:07Z", "2026-11-20 23:41:07.123" ... -> "2026-11-20 23:41:07"
-- (a form that compares correctly as a string), or nil.
local function norm_time(s)
  if type(s) ~= "string" then return nil end
  local d, t = s:match("^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d:%d%d:%d%d)")
  return d and (d .. " " .. t) or nil
end

local function status_of(ctx, id)
  local s = ctx.steps[id]
  return s and s.status
end

local function result_of(ctx, id)
  local s = ctx.steps[id]
  return (s and type(s.result) == "table") and s.result or {}
end

-- How the host ended up contained, or nil when nothing confirmed it.
-- (A denied approval leaves a step "skipped": that is the incident
-- commander's decision, and no fallback runs for it.)
local function containment(ctx)
  if status_of(ctx, "verify-isolation") == "succeeded" then return "edr" end
  if status_of(ctx, "isolate-firewall") == "succeeded" then return "nft" end
  if status_of(ctx, "isolate-by-hand") == "succeeded" then return "manual" end
  return nil
end

-- The quarantine ruleset for the firewall fallback: drop everything except
-- SSH to and from the management network. Declaring, deleting and declaring
-- the table again makes `nft -f` replace an older copy atomically (one
-- transaction), so applying it twice is harmless.
local function quarantine_rules(cidr)
  return table.concat({
    "table inet irp_quarantine",
    "delete table inet irp_quarantine",
    "table inet irp_quarantine {",
    "  chain input {",
    "    type filter hook input priority -10; policy drop;",
    "    iif \"lo\" accept",
    "    ip saddr " .. cidr .. " tcp dport 22 accept",
    "  }",
    "  chain output {",
    "    type filter hook output priority -10; policy drop;",
    "    oif \"lo\" accept",
    "    ip daddr " .. cidr .. " tcp sport 22 accept",
    "  }",
    "  chain forward {",
    "    type filter hook forward priority -10; policy drop;",
    "  }",
    "}",
  }, "\n") .. "\n"
end

-- The playbook ----------------------------------------------------------------

return playbook {
  id = "ransomware",
  title = "Ransomware outbreak on a host",
  version = "1.0.0",
  severity = "critical",
  description = "Files on a Linux server are being encrypted or a ransom note was found. "
    .. "Contain the host within 30 minutes, keep the evidence and the backups safe, "
    .. "rebuild from a known-good image and restore data from before the infection.",
  references = {
    "NIST SP 800-61r2, Computer Security Incident Handling Guide",
    "CISA #StopRansomware Guide",
    "AWS Incident Response Playbooks: IRP-Ransomware",
  },
  tags = { "security", "ransomware", "malware" },

  phases = { "detection", "containment", "eradication", "recovery", "post-incident" },

  inputs = {
    host = { required = true, doc = "Infected host, as the EDR and SSH know it (e.g. web-07)" },
    edr_cmd = { default = "edr", doc = "EDR wrapper command (see the top of this file)" },
    mgmt_cidr = { default = "10.20.0.0/24",
      doc = "Management network that may still SSH to a firewall-isolated host (irp runs inside it)" },
    backup_host = { default = "backup-01", doc = "Server holding the restic repository" },
    restic_repo = { default = "/srv/restic/servers", doc = "restic repository on backup_host" },
    restic_password_file = { default = "/etc/restic/password",
      doc = "restic password file on backup_host" },
    infected_since = { default = "",
      doc = "Earliest known compromise time, UTC 'YYYY-MM-DD HH:MM:SS' (default: the EDR's first detection)" },
  },

  objectives = { contain_within = "30m" },

  escalation = {
    { notify = { "slack-ir" } },
    { after = "15m", notify = { "pagerduty-secops" } },
    { after = "45m", notify = { "pagerduty-ciso" } },
  },

  steps = {
    -- Detection -------------------------------------------------------------

    step "check-inputs" {
      phase = "detection",
      title = "Check the inputs for {{host}}",
      doc = "Pure Lua, no side effect: a mistyped host or network stops the run here, "
        .. "with the reason, instead of half-way through containment.",
      timeout = "10s", idempotent = true,
      run = function(ctx)
        host_input(ctx, "host")
        host_input(ctx, "backup_host")
        if not ctx.vars.mgmt_cidr:match("^%d+%.%d+%.%d+%.%d+/%d+$") then
          ctx.fail("input mgmt_cidr=" .. ctx.vars.mgmt_cidr .. " is not an IPv4 CIDR such as 10.20.0.0/24")
        end
        if ctx.vars.infected_since ~= "" and not norm_time(ctx.vars.infected_since) then
          ctx.fail("input infected_since=" .. ctx.vars.infected_since
            .. " is not a UTC time such as '2026-11-20 23:41:07'")
        end
        if ctx.vars.edr_cmd == "" or ctx.vars.edr_cmd:sub(1, 1) == "-" then
          ctx.fail("input edr_cmd must name the EDR wrapper program")
        end
        return { host = ctx.vars.host }
      end,
    },

    step "triage" {
      phase = "detection",
      title = "Ask the EDR what it sees on {{host}}",
      doc = "Read-only. Keeps the EDR's view as evidence and gives the next steps the "
        .. "first detection time (the cut-off for a clean backup).",
      timeout = "1m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue", -- the EDR being down must not stop the response
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "status", host, timeout = "30s" }
        ctx.artifact("edr-status-" .. host .. ".txt", r.stdout)
        local st = parse_kv(r.stdout)
        local res = {
          agent = st.agent or "unknown",
          isolated = st.isolated == "yes",
          detections = tonumber(st.detections) or 0,
          first_seen = norm_time(st.first_seen) or "unknown",
          verdict = st.verdict or "unknown",
          family = st.family or "unknown",
        }
        ctx.log("EDR status of " .. host, res)
        return res
      end,
      drill = {
        code = 0,
        stdout = "host: web-07\nagent: online\nisolated: no\ndetections: 412\n"
          .. "first_seen: 2026-11-20 23:41:07\nverdict: ransomware\nfamily: LockBit 3.0\n",
      },
    },

    step "confirm" {
      phase = "detection",
      title = "Confirm that {{host}} is encrypting files",
      timeout = "10m",
      manual = [[
The EDR reports {{steps.triage.result.detections}} detections on {{host}}, first seen {{steps.triage.result.first_seen}} UTC, verdict "{{steps.triage.result.verdict}}" ({{steps.triage.result.family}}). "(unknown)" means the EDR query failed: use the console.

Confirm it is real ransomware before cutting a production server off:
  1. EDR console, host {{host}}: mass file renames or writes, new extensions, a process touching thousands of files.
  2. Look for a ransom note (README/HOW_TO_DECRYPT files) in data directories. Photograph or copy it; do NOT delete it.
  3. Check whether backups or snapshots were deleted in the last hours (a common first move).
  4. Do NOT power the host off: memory holds evidence and sometimes the keys.
  5. Do NOT contact the attackers or open any link in the note.

Answer "done: <what you saw>" to go on to containment.
If it is NOT ransomware, answer "failed: false positive - <why>"; the run stops and the record keeps your reason.]],
    },

    -- Containment -----------------------------------------------------------

    step "isolate-edr" {
      phase = "containment",
      title = "Isolate {{host}} from the network with the EDR",
      doc = "EDR network containment keeps the host running (memory stays intact) and "
        .. "keeps the EDR's own channel for evidence collection. Isolating twice is harmless.",
      approval = "incident-commander",
      timeout = "2m", retries = 3, backoff = "5s", idempotent = true,
      on_failure = "continue", -- isolate-firewall takes over
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "isolate", host, timeout = "60s" }
        local job = r.stdout:match("job%s+(%S+)") or "unknown"
        ctx.log("EDR isolation requested for " .. host, { job = job })
        return { method = "edr", job = job }
      end,
      drill = { code = 0, stdout = "isolation job 42 queued\n" },
    },

    step "verify-isolation" {
      phase = "containment",
      title = "Check that the EDR reports {{host}} isolated",
      doc = "An accepted job is not a contained host: poll until the EDR confirms.",
      when = function(ctx) return status_of(ctx, "isolate-edr") == "succeeded" end,
      timeout = "1m", retries = 4, backoff = "5s", idempotent = true,
      on_failure = "continue", -- the firewall fallback comes next
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "status", host, timeout = "30s" }
        local st = parse_kv(r.stdout)
        if st.isolated ~= "yes" then
          ctx.fail(string.format("the EDR reports %s isolated=%s (agent %s)", host,
            st.isolated or "?", st.agent or "?"))
        end
        ctx.notify("slack-ir", host .. " is isolated (EDR network containment)", { host = host, method = "edr" })
        return { isolated = true, method = "edr", agent = st.agent or "unknown" }
      end,
      drill = {
        code = 0,
        stdout = "host: web-07\nagent: online\nisolated: yes\ndetections: 415\n"
          .. "first_seen: 2026-11-20 23:41:07\nverdict: ransomware\nfamily: LockBit 3.0\n",
      },
    },

    step "isolate-firewall" {
      phase = "containment",
      title = "Isolate {{host}} with its own firewall (EDR isolation failed)",
      doc = "Fallback: an nftables table that drops all traffic except SSH from the "
        .. "management network (input mgmt_cidr). Applied atomically; applying it again "
        .. "replaces it.",
      when = function(ctx)
        return status_of(ctx, "isolate-edr") == "failed" or status_of(ctx, "verify-isolation") == "failed"
      end,
      approval = "incident-commander",
      timeout = "2m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "escalate", -- both automated isolations failed: page the next tier
      run = function(ctx)
        local host = host_input(ctx, "host")
        local cidr = ctx.vars.mgmt_cidr
        if not cidr:match("^%d+%.%d+%.%d+%.%d+/%d+$") then
          ctx.fail("input mgmt_cidr=" .. cidr .. " is not an IPv4 CIDR such as 10.20.0.0/24")
        end
        exec(ctx, ssh(host, "sudo", "nft", "-f", "-"),
          { stdin = quarantine_rules(cidr), timeout = "30s" })
        local r = exec(ctx, ssh(host, "sudo", "nft", "list", "table", "inet", "irp_quarantine"),
          { timeout = "30s" })
        if not r.stdout:find("policy drop", 1, true) then
          ctx.fail("the quarantine table is not in place on " .. host .. ": " .. last_line(r.stdout))
        end
        ctx.artifact("nft-quarantine-" .. host .. ".txt", r.stdout)
        ctx.notify("slack-ir", host .. " is isolated (host firewall, SSH from " .. cidr .. " only)",
          { host = host, method = "nft" })
        return { isolated = true, method = "nft", allowed = cidr }
      end,
      drill = {
        code = 0,
        stdout = "table inet irp_quarantine {\n\tchain input {\n"
          .. "\t\ttype filter hook input priority filter - 10; policy drop;\n"
          .. "\t\tiif \"lo\" accept\n\t\tip saddr 10.20.0.0/24 tcp dport 22 accept\n\t}\n}\n",
      },
    },

    step "isolate-by-hand" {
      phase = "containment",
      title = "Disconnect {{host}} by hand (automated isolation failed)",
      when = function(ctx) return status_of(ctx, "isolate-firewall") == "failed" end,
      timeout = "15m",
      manual = [[
Neither the EDR nor the host firewall could isolate {{host}}. The next escalation tier has been paged.
Cut it off at the network layer now, keeping it powered on:
  - physical or on-prem VM: have the network team shut the switch port, or disconnect the VM's vNIC in the hypervisor;
  - cloud instance: replace its security groups with an empty "quarantine" group (no rules allow nothing).
Do NOT power it off or reboot it (memory evidence).
Then check from another host that {{host}} no longer answers (ping, its service port).
Answer "done: <who cut what, when>".]],
    },

    step "protect-backups" {
      phase = "containment",
      title = "Protect the backups of {{host}}",
      timeout = "15m",
      manual = [[
Ransomware goes after backups next. On {{backup_host}}:
  1. Revoke the credentials {{host}} uses to write backups (e.g. `restic -r {{restic_repo}} key list`, then `key remove <id>` for the host's key; or disable its rest-server / S3 user).
  2. PAUSE retention jobs (restic forget --prune, lifecycle rules) for {{host}}: if they keep running, new encrypted snapshots push the last good ones out.
  3. Confirm the repository is append-only or object-locked, and that the newest snapshots were not deleted.
Answer "done: <what you changed>".]],
    },

    step "scope" {
      phase = "containment",
      title = "Hunt for other hosts with the same indicators as {{host}}",
      timeout = "5m", retries = 2, backoff = "10s", idempotent = true,
      on_failure = "continue", -- scoping is also done by people; do not block containment
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "hunt", host, timeout = "4m" }
        local list, seen = {}, {}
        for line in r.stdout:gmatch("[^\r\n]+") do
          local h = line:match("^%s*([%w][%w%.%-]*)%s*$")
          if h and h ~= host and not seen[h] then
            seen[h] = true
            list[#list + 1] = h
          end
        end
        ctx.artifact("edr-hunt-" .. host .. ".txt", r.stdout)
        ctx.log(#list .. " other host(s) match the indicators of " .. host, { hosts = list })
        return { count = #list, hosts = (#list > 0) and table.concat(list, ", ") or "none", list = list }
      end,
      drill = { code = 0, stdout = "web-08\napp-03\n" },
    },

    step "contain-others" {
      phase = "containment",
      title = "Start a response for every other affected host",
      when = function(ctx) return (result_of(ctx, "scope").count or 0) > 0 end,
      timeout = "10m",
      manual = [[
The hunt found {{steps.scope.result.count}} more host(s) with the same indicators: {{steps.scope.result.hosts}}.
Start one run of this playbook per host, each from its own terminal, so every host has its own record:
  irp run playbooks/ransomware.lua -v host=<name>
If more than a handful are affected, tell the incident commander now: this is an outbreak, not a host incident (consider isolating the network segment).
Answer "done: <run ids started>".]],
    },

    step "collect-evidence" {
      phase = "containment",
      title = "Collect a forensic triage package from {{host}}",
      doc = "Through the EDR's channel, which isolation keeps open. Best effort: a failed "
        .. "collection is recorded, and containment goes on.",
      timeout = "30m", retries = 1, backoff = "30s",
      on_failure = "continue",
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "collect", host, timeout = "25m" }
        -- The receipt is the chain-of-custody link between this run and the package.
        local a = ctx.artifact("edr-collection-" .. host .. ".txt", r.stdout)
        return {
          collection = r.stdout:match("collection%s+(%S+)") or "unknown",
          package_sha256 = r.stdout:match("sha256%s+(%x+)") or "unknown",
          stored = r.stdout:match("stored%s+(%S+)") or "unknown",
          receipt_sha256 = a.sha256,
        }
      end,
      drill = {
        code = 0,
        stdout = "collection 7781 sha256 "
          .. "9f2c4a1be0d7c3e85a6b1f0e2d4c8a7b9e3f5d1c0b2a4e6f8d0c2b4a6e8f0d2c4 "
          .. "stored s3://ir-evidence/web-07/7781.zip\n",
      },
    },

    step "notify-legal" {
      phase = "containment",
      title = "Bring in legal counsel and the cyber insurer",
      timeout = "30m",
      manual = [[
Call (do not only e-mail) legal counsel / the DPO and, if you have one, the cyber-insurance hotline. Tell them:
  - host {{host}} is hit by ransomware ({{steps.triage.result.family}}), contained at this point;
  - whether personal or customer data lives on it (breach notification deadlines may run from NOW, e.g. 72 hours under GDPR);
  - that a ransom note exists and nobody has contacted the attackers.
Payment and law-enforcement contact are their decisions, not the responder's.
Answer "done: <who you reached, when>".]],
    },

    -- Eradication -----------------------------------------------------------

    step "root-cause" {
      phase = "eradication",
      title = "Find how the attackers got into {{host}}",
      timeout = "4h",
      manual = [[
Using the triage package (collection {{steps.collect-evidence.result.collection}}) and central logs, establish:
  1. Initial access: exposed service or unpatched software, stolen SSH key or password, a compromised CI/deploy path.
  2. What ran: binaries, scripts, cron entries, systemd units, authorized_keys changes, new users.
  3. Where they went next: outbound SSH, credentials read from this host.
  4. Whether data was copied out (double extortion): unusual outbound volume before encryption.
Record the answer in your note, e.g. "done: initial access via leaked deploy key, no exfiltration seen".]],
    },

    step "rotate-credentials" {
      phase = "eradication",
      title = "Rotate every credential that lived on {{host}}",
      timeout = "2h",
      manual = [[
Treat everything {{host}} could read as stolen:
  - SSH keys on the host and their entries in other hosts' authorized_keys; deploy keys;
  - database passwords, API tokens, cloud access keys in config files and environment;
  - passwords of accounts that logged in to {{host}} in the last 30 days (privileged first).
Rotate, then revoke the old ones. Note which systems you touched.
Answer "done: <count> credentials rotated".]],
    },

    step "rebuild" {
      phase = "eradication",
      title = "Rebuild {{host}} from a known-good image",
      timeout = "4h",
      manual = [[
Do not clean the infected system: rebuild it.
  1. Detach the infected disk and keep it, labelled with this run id, for forensics and legal hold. Do not wipe it until legal releases it.
  2. Provision {{host}} from the golden image or configuration management, fully patched, with the hole found in root-cause closed.
  3. Keep the new host off the production network (quarantine VLAN or security group) until the release step.
  4. Install the EDR agent and make sure it reports in.
Do NOT copy binaries, scripts or configuration from the old disk.
Answer "done: <image/version used>".]],
    },

    step "scan-rebuilt" {
      phase = "eradication",
      title = "Full EDR scan of the rebuilt {{host}}",
      timeout = "1h", retries = 1, backoff = "1m", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "scan", host, timeout = "55m" }
        local n = tonumber(r.stdout:match("detections%s*[=:]%s*(%d+)"))
        if n == nil then
          ctx.fail("cannot read the detection count from: " .. last_line(r.stdout))
        end
        if n > 0 then
          ctx.fail(string.format("the rebuilt %s still has %d detection(s): stop and investigate", host, n))
        end
        return { detections = 0 }
      end,
      drill = { code = 0, stdout = "scan complete: detections=0\n" },
    },

    -- Recovery --------------------------------------------------------------

    step "find-clean-backup" {
      phase = "recovery",
      title = "Find the last backup of {{host}} taken before the infection",
      doc = "Lists restic snapshots (times in UTC) and picks the newest one older than the "
        .. "compromise time (input infected_since, else the EDR's first detection).",
      timeout = "5m", retries = 2, backoff = "10s", idempotent = true,
      on_failure = "escalate", -- no clean backup is a business decision (CISO, legal)
      run = function(ctx)
        local host = host_input(ctx, "host")
        local backup = host_input(ctx, "backup_host")
        local cutoff = norm_time(ctx.vars.infected_since) or norm_time(result_of(ctx, "triage").first_seen)
        if not cutoff then
          ctx.fail("no compromise time known: pass -v infected_since='YYYY-MM-DD HH:MM:SS' (UTC)")
        end
        local r = exec(ctx, ssh(backup, "sudo", "env", "TZ=UTC", "restic",
          "-r", ctx.vars.restic_repo, "--password-file", ctx.vars.restic_password_file,
          "snapshots", "--host", host, "--compact"), { timeout = "4m" })
        ctx.artifact("restic-snapshots-" .. host .. ".txt", r.stdout)
        local before = {}
        for line in r.stdout:gmatch("[^\r\n]+") do
          local id, when = line:match("^(%x+)%s+(%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d)")
          if id and #id >= 8 and when < cutoff then before[#before + 1] = { id = id, time = when } end
        end
        if #before == 0 then
          ctx.fail("no snapshot of " .. host .. " older than " .. cutoff .. " UTC")
        end
        table.sort(before, function(a, b) return a.time > b.time end)
        local older = {}
        for i = 2, math.min(#before, 4) do older[#older + 1] = before[i].id .. " (" .. before[i].time .. ")" end
        return {
          snapshot = before[1].id, time = before[1].time, cutoff = cutoff,
          older = (#older > 0) and table.concat(older, ", ") or "none",
        }
      end,
      drill = {
        code = 0,
        stdout = "ID        Time                 Host        Tags\n"
          .. "------------------------------------------------------\n"
          .. "4bba301e  2026-11-18 02:00:03  web-07\n"
          .. "9c1d02aa  2026-11-19 02:00:04  web-07\n"
          .. "e5f2c3b1  2026-11-20 02:00:02  web-07\n"
          .. "77a0d9c4  2026-11-21 02:00:05  web-07\n"
          .. "------------------------------------------------------\n"
          .. "4 snapshots\n",
      },
    },

    step "restore-data" {
      phase = "recovery",
      title = "Restore snapshot {{steps.find-clean-backup.result.snapshot}} to a staging directory",
      doc = "Restores on the backup server into /srv/restore/<host>/<snapshot>, never over "
        .. "live data, and verifies the restored file contents. Repeating it rewrites the "
        .. "same staging directory.",
      when = function(ctx) return status_of(ctx, "find-clean-backup") == "succeeded" end,
      timeout = "2h", retries = 1, backoff = "1m", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local host = host_input(ctx, "host")
        local backup = host_input(ctx, "backup_host")
        local snap = result_of(ctx, "find-clean-backup").snapshot
        if type(snap) ~= "string" or not snap:match("^%x+$") then
          ctx.fail("no snapshot id from find-clean-backup")
        end
        local target = "/srv/restore/" .. host .. "/" .. snap
        local r = exec(ctx, ssh(backup, "sudo", "restic", "-r", ctx.vars.restic_repo,
          "--password-file", ctx.vars.restic_password_file,
          "restore", snap, "--target", target, "--verify"), { timeout = "115m" })
        ctx.artifact("restic-restore-" .. host .. ".txt", r.stdout)
        return { snapshot = snap, target = target, summary = last_line(r.stdout) }
      end,
      drill = {
        code = 0,
        stdout = "restoring <Snapshot e5f2c3b1 of [/srv/app /etc] at 2026-11-20 02:00:02 +0000 UTC "
          .. "by root@web-07> to /srv/restore/web-07/e5f2c3b1\n"
          .. "Summary: Restored 48213 files/dirs (12.4 GiB) in 9:41\n",
      },
    },

    step "validate-data" {
      phase = "recovery",
      title = "Put the restored data in place on {{host}} and validate it",
      timeout = "2h",
      manual = [[
Restored snapshot {{steps.find-clean-backup.result.snapshot}} (taken {{steps.find-clean-backup.result.time}} UTC, before the compromise at {{steps.find-clean-backup.result.cutoff}} UTC) is in {{backup_host}}:{{steps.restore-data.result.target}}.
  1. Copy DATA only (no binaries, no cron or systemd files) onto the rebuilt {{host}}.
  2. Have the service owner validate it: application starts, sample records are right, checksums match where you keep them.
  3. Write down the data-loss window: from the snapshot time to the compromise time.
If this snapshot turns out to be infected too, restore an older one by hand (candidates: {{steps.find-clean-backup.result.older}}) and say so in the note.
Answer "done: <validated by whom; data-loss window>".]],
    },

    step "release-isolation" {
      phase = "recovery",
      title = "Put {{host}} back on the network",
      doc = "Lifts the isolation that was used (EDR or firewall). Needs the incident "
        .. "commander: releasing a host that is still infected restarts the incident.",
      approval = "incident-commander",
      timeout = "2m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue", -- denied or failed: the host stays isolated, which is safe
      run = function(ctx)
        local host = host_input(ctx, "host")
        local how = containment(ctx)
        if how == "nft" then
          -- A rebuilt host no longer has the table: "No such file" means released.
          local r = exec(ctx, ssh(host, "sudo", "nft", "delete", "table", "inet", "irp_quarantine"),
            { timeout = "30s", check = false })
          if r.code ~= 0 and not (r.stderr or ""):find("No such file", 1, true) then
            ctx.fail("nft delete table failed on " .. host .. ": " .. last_line(r.stderr))
          end
          return { method = "nft" }
        elseif how == "edr" then
          local r = ctx.exec { ctx.vars.edr_cmd, "release", host, timeout = "60s" }
          return { method = "edr", job = r.stdout:match("job%s+(%S+)") or "unknown" }
        end
        ctx.log("the host was disconnected by hand: reconnect it the same way", { method = how or "none" })
        return { method = how or "none", action = "reconnect by hand" }
      end,
      drill = { code = 0, stdout = "release job 43 queued\n" },
    },

    step "post-release-check" {
      phase = "recovery",
      title = "Check {{host}} is online and clean after the release",
      when = function(ctx) return status_of(ctx, "release-isolation") == "succeeded" end,
      timeout = "2m", retries = 3, backoff = "20s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local host = host_input(ctx, "host")
        local r = ctx.exec { ctx.vars.edr_cmd, "status", host, timeout = "30s" }
        local st = parse_kv(r.stdout)
        local n = tonumber(st.detections) or -1
        if st.agent ~= "online" then ctx.fail("EDR agent on " .. host .. " is " .. (st.agent or "unknown")) end
        if st.isolated == "yes" then ctx.fail(host .. " is still isolated") end
        if n ~= 0 then ctx.fail(host .. " reports " .. n .. " detection(s) after the rebuild") end
        return { agent = st.agent, detections = n }
      end,
      drill = {
        code = 0,
        stdout = "host: web-07\nagent: online\nisolated: no\ndetections: 0\nverdict: clean\n",
      },
    },

    step "watch" {
      phase = "recovery",
      title = "Hand {{host}} over to heightened monitoring",
      timeout = "30m",
      manual = [[
For the next 72 hours:
  - alert on any EDR detection on {{host}} and on the hosts from the hunt ({{steps.scope.result.hosts}});
  - watch outbound traffic from {{host}} and logins with the rotated credentials (old ones failing = attacker still trying);
  - resume the backup retention jobs paused in protect-backups, and take a fresh full backup now.
Answer "done: <who watches, until when>".]],
    },

    -- Post-incident ---------------------------------------------------------

    step "timeline" {
      phase = "post-incident",
      title = "Write the incident summary for the review",
      doc = "Pure Lua over the recorded results: works the same after a resume.",
      timeout = "30s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local host = ctx.vars.host
        local tri = result_of(ctx, "triage")
        local snap = result_of(ctx, "find-clean-backup")
        local ev = result_of(ctx, "collect-evidence")
        local lines = {
          "# Ransomware on " .. host,
          "",
          "- run: " .. tostring(ctx.run_id or "(none)") .. (ctx.drill and " (drill)" or ""),
          "- family: " .. tostring(tri.family or "unknown") .. ", first detection "
            .. tostring(tri.first_seen or "unknown") .. " UTC",
          "- contained by: " .. tostring(containment(ctx) or "NOT CONFIRMED"),
          "- other hosts with the same indicators: " .. tostring(result_of(ctx, "scope").hosts or "not hunted"),
          "- evidence package: " .. tostring(ev.collection or "none") .. " sha256 "
            .. tostring(ev.package_sha256 or "-"),
          "- restored snapshot: " .. tostring(snap.snapshot or "none") .. " taken "
            .. tostring(snap.time or "-") .. " UTC (compromise " .. tostring(snap.cutoff or "-") .. ")",
          "",
          "Step outcomes:",
        }
        for _, id in ipairs({ "isolate-edr", "verify-isolation", "isolate-firewall", "isolate-by-hand",
          "scan-rebuilt", "restore-data", "release-isolation", "post-release-check" }) do
          lines[#lines + 1] = "- " .. id .. ": " .. tostring(status_of(ctx, id) or "not reached")
        end
        local text = table.concat(lines, "\n") .. "\n"
        local a = ctx.artifact("summary-" .. host .. ".md", text)
        ctx.notify("slack-ir", "Ransomware on " .. host .. ": recovery finished, summary stored",
          { sha256 = a.sha256 })
        return { summary_sha256 = a.sha256 }
      end,
    },

    step "review" {
      phase = "post-incident",
      title = "Hold the blameless post-incident review",
      timeout = "1h",
      manual = [[
Schedule the review within 3 business days and bring `irp report` of this run. Cover:
  - time to detect, to contain (objective: 30 minutes), to recover; the data-loss window;
  - how they got in and which single control would have stopped it;
  - why the backups were or were not enough (immutability, retention, restore speed);
  - what this playbook got wrong: fix it in the same week.
Also: status of notifications to regulators/customers, and the legal hold on the infected disk.
Answer "done: <review date, owner of the action items>".]],
    },
  },
}
