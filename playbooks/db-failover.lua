-- playbooks/db-failover.lua: disaster recovery when the PostgreSQL primary is lost.
--
-- The flow: make sure the primary is really gone (and not just unreachable
-- from here), read the standby's and Patroni's view, decide, fence the old
-- primary so it can never come back as a second primary, promote the standby
-- (patronictl failover, or pg_ctl promote without Patroni), repoint the
-- application (DNS name + PgBouncer), prove that writes work through the
-- application path, check replication and WAL archiving on the new timeline,
-- then rebuild the old primary as a standby with pg_basebackup, keeping its
-- old data directory for the transactions that never reached the standby.
--
-- Two modes (input mode):
--   patroni  Patroni manages the cluster. This playbook is for when it did NOT
--            fail over by itself (maintenance mode, lag above
--            maximum_lag_on_failover, DCS trouble); if it did, the promotion is
--            skipped and the rest still applies.
--   pg_ctl   plain streaming replication, no cluster manager.
--
-- Site prerequisites:
-- * Key-based SSH (BatchMode) from the irp machine to the standby and the old
--   primary, with sudo for patronictl, systemctl, mv and `sudo -u postgres`.
-- * On the irp machine: pg_isready and psql (postgresql-client), nsupdate and
--   dig (bind9-dnsutils), ipmitool when primary_bmc is set; a ~/.pgpass with
--   the PgBouncer admin user and the probe user; the nsupdate TSIG key file.
-- * The application reaches the database through PgBouncer, which connects to
--   the DNS name db_dns_name (a CNAME to the current primary, short TTL).
-- * A replication user (replication_user) with its password in ~postgres/.pgpass
--   on the old primary, for pg_basebackup; pg_hba.conf on every database host
--   allows replication connections from the others (the standby becomes the
--   upstream of the old primary).
-- * In patroni mode, pgdata is Patroni's postgresql.data_dir.
--
-- Notifier names used: slack-dba, pagerduty-dba, pagerduty-eng-manager.

-- Helpers -------------------------------------------------------------------

-- ssh joins its arguments with spaces and the remote shell parses them again:
-- every remote argument that is not a plain word (SQL, for one) is quoted.
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

-- One SQL statement as the postgres superuser on HOST (local socket): rows
-- come back unaligned, '|' between columns, no headers.
local function psql_on(ctx, host, sql, opts)
  return exec(ctx, ssh(host, "sudo", "-u", "postgres", "psql", "-X", "-A", "-t", "-F", "|",
    "-v", "ON_ERROR_STOP=1", "-c", sql), opts)
end

local function first_row(text)
  local line = (text or ""):match("[^\r\n]+") or ""
  local f = {}
  for x in (line .. "|"):gmatch("([^|]*)|") do f[#f + 1] = x end
  return f
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
local function short_name(h) return (h:match("^([^.]+)") or h) end
-- Replication slot names allow lower-case letters, digits and '_'.
local function slot_name(h) return (short_name(h):lower():gsub("[^%w]", "_")) end

-- `patronictl list`: the table's header names the columns, so the parse
-- does not depend on the Patroni version's column order.
local function parse_patroni(text)
  local cols, members = nil, {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    if line:match("^%s*|") then
      local cells = {}
      for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
      if cells[#cells] == "" then cells[#cells] = nil end
      if not cols then
        for _, c in ipairs(cells) do if c == "Member" then cols = cells end end
      else
        local m = {}
        for i, name in ipairs(cols) do m[name] = cells[i] or "" end
        members[#members + 1] = { name = m["Member"] or "", host = m["Host"] or "", role = m["Role"] or "",
          state = m["State"] or "", tl = tonumber(m["TL"]) }
      end
    end
  end
  return members, (text or ""):find("Maintenance mode: on", 1, true) ~= nil
end

local function is_healthy(state) return state == "running" or state == "streaming" end

-- The standby's Patroni member name: input standby_member, else the member
-- named like the host (full or short name) or listed with that host.
local function standby_member(ctx, members)
  if ctx.vars.standby_member ~= "" then return ctx.vars.standby_member end
  local h = ctx.vars.standby
  for _, m in ipairs(members or {}) do
    if m.name == h or m.name == short_name(h) or m.host == h then return m.name end
  end
  return nil
end

local function planned(ctx) return result_of(ctx, "plan").action end

-- The playbook ----------------------------------------------------------------

return playbook {
  id = "db-failover",
  title = "PostgreSQL primary lost: promote the standby",
  version = "1.0.0",
  severity = "critical",
  description = "The PostgreSQL primary is down and will not come back soon. Fence it, promote "
    .. "the standby, repoint the application, verify replication and WAL archiving, and "
    .. "rebuild the old primary as a standby.",
  references = {
    "PostgreSQL documentation: High Availability, Load Balancing, and Replication (failover)",
    "Patroni documentation: patronictl failover, pause/resume",
    "GitLab runbooks: Patroni management, pg_basebackup replica resync",
  },
  tags = { "disaster-recovery", "database", "postgresql" },

  phases = { "assessment", "failover", "recovery", "rebuild", "post-incident" },

  inputs = {
    primary = { required = true, doc = "The lost primary's host name (FQDN)" },
    standby = { required = true, doc = "The standby to promote (FQDN)" },
    mode = { default = "patroni", doc = "patroni (patronictl failover) or pg_ctl (pg_ctl promote)" },
    cluster = { default = "pg-main", doc = "Patroni cluster (scope) name" },
    patroni_config = { default = "/etc/patroni/patroni.yml", doc = "patroni.yml on the standby" },
    standby_member = { default = "", doc = "Patroni member name of the standby (default: found by host name)" },
    primary_member = { default = "", doc = "Patroni member name of the old primary (default: its short host name)" },
    pg_bin = { default = "/usr/lib/postgresql/16/bin", doc = "PostgreSQL binaries on the database hosts" },
    pgdata = { default = "/var/lib/postgresql/16/main", doc = "Data directory on the database hosts" },
    pg_service = { default = "postgresql@16-main", doc = "systemd unit of PostgreSQL in pg_ctl mode" },
    replication_user = { default = "replicator", doc = "Replication role used by pg_basebackup" },
    primary_bmc = { default = "", doc = "IPMI address of the old primary for power fencing (empty: fence by hand)" },
    bmc_user = { default = "irp-fence", doc = "IPMI user; its password is in /etc/irp/ipmi.pass on the irp machine" },
    db_dns_name = { default = "db-primary.internal.example", doc = "DNS name PgBouncer connects to (a CNAME)" },
    dns_server = { default = "ns1.internal.example", doc = "Primary DNS server accepting dynamic updates" },
    nsupdate_key = { default = "/etc/irp/nsupdate.key", doc = "TSIG key file for nsupdate on the irp machine" },
    pgbouncer_host = { default = "pgbouncer-01", doc = "PgBouncer host (admin console on port 6432)" },
    app_db = { default = "app", doc = "Application database, as PgBouncer names it" },
    probe_user = { default = "irp_probe", doc = "Login used to prove writes through PgBouncer" },
  },

  objectives = { failover_within = "15m", recover_within = "30m" },

  escalation = {
    { notify = { "slack-dba" } },
    { after = "10m", notify = { "pagerduty-dba" } },
    { after = "30m", notify = { "pagerduty-eng-manager" } },
  },

  steps = {
    -- Assessment ------------------------------------------------------------

    step "check-inputs" {
      phase = "assessment",
      title = "Check the inputs: promote {{standby}} in place of {{primary}}",
      doc = "Pure Lua: host names and paths end up in commands on the database hosts.",
      timeout = "10s", idempotent = true,
      run = function(ctx)
        local v = ctx.vars
        for _, name in ipairs({ "primary", "standby", "dns_server", "pgbouncer_host", "db_dns_name" }) do
          if not valid_host(v[name]) then ctx.fail("input " .. name .. "=" .. v[name] .. " is not a host name") end
        end
        if v.primary_bmc ~= "" and not valid_host(v.primary_bmc) then
          ctx.fail("input primary_bmc=" .. v.primary_bmc .. " is not a host name or address")
        end
        if v.primary == v.standby then ctx.fail("primary and standby are the same host") end
        if v.mode ~= "patroni" and v.mode ~= "pg_ctl" then
          ctx.fail("input mode=" .. v.mode .. " must be patroni or pg_ctl")
        end
        for _, name in ipairs({ "patroni_config", "pg_bin", "pgdata", "nsupdate_key" }) do
          if v[name]:sub(1, 1) ~= "/" or v[name]:find("%.%.") then
            ctx.fail("input " .. name .. "=" .. v[name] .. " must be an absolute path")
          end
        end
        for _, name in ipairs({ "cluster", "standby_member", "primary_member", "pg_service", "replication_user", "app_db",
          "probe_user", "bmc_user" }) do
          if v[name] ~= "" and not v[name]:match("^[%w][%w%._@%-]*$") then
            ctx.fail("input " .. name .. "=" .. v[name] .. " has characters that are not allowed")
          end
        end
        return { mode = v.mode }
      end,
    },

    step "probe-primary" {
      phase = "assessment",
      title = "Check that {{primary}} is really down",
      doc = "Three probes from here, five seconds apart, and one from the standby: a primary "
        .. "that only looks dead from the irp machine is a network problem, and promoting "
        .. "then makes two primaries.",
      timeout = "1m", idempotent = true,
      run = function(ctx)
        local v = ctx.vars
        local states = { [0] = "accepting", [1] = "rejecting", [2] = "no response", [3] = "no attempt" }
        local last
        for i = 1, 3 do
          last = ctx.exec { "pg_isready", "-h", v.primary, "-p", "5432", "-t", "5", timeout = "10s", check = false }
          if last.code == 0 then
            ctx.fail(v.primary .. " accepts connections: this is not a lost primary. If it is up but "
              .. "unusable (corrupt, disk full), stop PostgreSQL on it first (that is the fence), then run again.")
          end
          if i < 3 then ctx.sleep("5s") end
        end
        local peer = exec(ctx, ssh(v.standby, "pg_isready", "-h", v.primary, "-p", "5432", "-t", "5"),
          { timeout = "20s", check = false })
        if peer.code == 0 then
          ctx.fail("the standby still reaches " .. v.primary .. ": a network split between here and the "
            .. "databases, not a lost primary. Do not promote.")
        end
        local res = { from_irp = states[last.code] or ("code " .. last.code),
          from_standby = states[peer.code] or ("code " .. peer.code) }
        ctx.log(v.primary .. " is down", res)
        return res
      end,
      drill = { code = 2, stdout = "pg-01.db.internal.example:5432 - no response\n" },
    },

    step "cluster-state" {
      phase = "assessment",
      title = "Read Patroni's view of cluster {{cluster}}",
      when = function(ctx) return ctx.vars.mode == "patroni" end,
      timeout = "1m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue", -- DCS trouble shows here; the decision step says what then
      run = function(ctx)
        local v = ctx.vars
        local r = exec(ctx, ssh(v.standby, "sudo", "patronictl", "-c", v.patroni_config, "list", v.cluster),
          { timeout = "30s" })
        ctx.artifact("patronictl-list-before.txt", r.stdout)
        local members, paused = parse_patroni(r.stdout)
        local leader, names = nil, {}
        for _, m in ipairs(members) do
          names[#names + 1] = m.name .. " " .. m.role .. "/" .. m.state
          if m.role == "Leader" then leader = m end
        end
        return {
          leader = leader and leader.name or "none",
          leader_state = leader and leader.state or "none",
          paused = paused,
          members = members,
          summary = table.concat(names, ", "),
        }
      end,
      drill = {
        code = 0,
        stdout = "+ Cluster: pg-main (7301234567890123456) ---+-----------+----+-----------+\n"
          .. "| Member | Host       | Role    | State     | TL | Lag in MB |\n"
          .. "+--------+------------+---------+-----------+----+-----------+\n"
          .. "| pg-02  | 10.30.0.12 | Replica | running   |  7 |           |\n"
          .. "| pg-03  | 10.30.0.13 | Replica | streaming |  7 |           |\n"
          .. "+--------+------------+---------+-----------+----+-----------+\n"
          .. " Maintenance mode: on\n",
      },
    },

    step "standby-state" {
      phase = "assessment",
      title = "Read replication state on {{standby}}",
      doc = "WAL received and replayed, and the time of the last replayed commit: every "
        .. "commit on the old primary after that time may be lost (asynchronous replication).",
      timeout = "1m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local r = psql_on(ctx, ctx.vars.standby,
          "select pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), "
            .. "coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', "
            .. "'YYYY-MM-DD HH24:MI:SS'), 'never')", { timeout = "30s" })
        local f = first_row(r.stdout)
        if f[1] ~= "t" and f[1] ~= "f" then ctx.fail("unexpected psql output: " .. last_line(r.stdout)) end
        local res = {
          in_recovery = f[1] == "t",
          receive_lsn = (f[2] ~= "" and f[2]) or "none",
          replay_lsn = (f[3] ~= "" and f[3]) or "none",
          last_replay_utc = f[4] or "never",
        }
        res.replay_pending = res.receive_lsn ~= res.replay_lsn
        ctx.log("standby " .. ctx.vars.standby, res)
        return res
      end,
      drill = { code = 0, stdout = "t|0/5A0001F8|0/5A0001F8|2026-11-25 03:12:44\n" },
    },

    step "decide" {
      phase = "assessment",
      title = "Decide to fail over to {{standby}}",
      timeout = "10m",
      manual = [[
Facts so far:
  - {{primary}}: {{steps.probe-primary.result.from_irp}} from here, {{steps.probe-primary.result.from_standby}} from the standby.
  - Patroni (read in patroni mode only; this run: {{mode}}): leader {{steps.cluster-state.result.leader}}, maintenance mode {{steps.cluster-state.result.paused}}; members: {{steps.cluster-state.result.summary}}.
  - {{standby}}: in recovery {{steps.standby-state.result.in_recovery}}, received {{steps.standby-state.result.receive_lsn}}, replayed {{steps.standby-state.result.replay_lsn}}, last commit replayed at {{steps.standby-state.result.last_replay_utc}} UTC.

Before you answer:
  1. Confirm with the platform (cloud console, hypervisor, data centre) that {{primary}} is down and why. If it will be back in minutes with its disk intact, waiting can be better than failing over.
  2. Data loss: commits made on {{primary}} after the last replayed commit above are NOT on the standby. Tell the incident commander and the service owner.
  3. If Patroni cannot reach its DCS (etcd/Consul), patronictl fails: fix the DCS, or use mode pg_ctl only after stopping Patroni on the standby.
Answer "done" to fence and promote, or "failed: <why not>" to stop here.]],
    },

    step "plan" {
      phase = "assessment",
      title = "Work out what the failover has to do",
      doc = "Pure Lua over the facts: promote, or nothing to promote (Patroni already did it, or "
        .. "the standby is already a primary). Stops on a contradiction rather than guessing.",
      timeout = "10s", idempotent = true,
      run = function(ctx)
        local v = ctx.vars
        if v.mode == "patroni" then
          if status_of(ctx, "cluster-state") ~= "succeeded" then
            ctx.fail("no Patroni cluster state (patronictl failed): fix the DCS, or run again with -v mode=pg_ctl "
              .. "after stopping Patroni on " .. v.standby)
          end
          local cs = result_of(ctx, "cluster-state")
          local member = standby_member(ctx, cs.members)
          if not member then
            ctx.fail(v.standby .. " is not a member of " .. v.cluster .. " (" .. tostring(cs.summary)
              .. "); pass -v standby_member=NAME")
          end
          if cs.leader ~= "none" and is_healthy(cs.leader_state) then
            if cs.leader == member then return { action = "already-promoted", member = member } end
            if cs.leader == v.primary or cs.leader == short_name(v.primary) then
              ctx.fail("Patroni still sees " .. cs.leader .. " as a running leader: do not promote, investigate")
            end
            ctx.fail("Patroni already promoted " .. cs.leader .. ", not " .. member
              .. ": run again with -v standby=<host of " .. cs.leader .. ">")
          end
          for _, m in ipairs(cs.members or {}) do
            if m.name == member and not is_healthy(m.state) then
              ctx.fail("the standby's member " .. member .. " is " .. m.state .. ": it cannot be promoted")
            end
          end
          return { action = "promote", member = member }
        end
        local ss = result_of(ctx, "standby-state")
        if ss.in_recovery == nil then ctx.fail("the standby's state is unknown: standby-state failed") end
        if ss.in_recovery == false then return { action = "already-promoted", member = v.standby } end
        return { action = "promote", member = v.standby }
      end,
    },

    -- Failover ---------------------------------------------------------------

    step "fence-primary" {
      phase = "failover",
      title = "Power off {{primary}} through its BMC (fencing)",
      doc = "A primary that comes back after the promotion takes writes on the old timeline: "
        .. "split brain. Powering it off first is the classic fence. Powering off twice is harmless.",
      when = function(ctx) return ctx.vars.primary_bmc ~= "" end,
      approval = "incident-commander",
      timeout = "2m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "continue", -- fence-by-hand follows
      run = function(ctx)
        local v = ctx.vars
        local base = { "ipmitool", "-I", "lanplus", "-H", v.primary_bmc, "-U", v.bmc_user, "-f", "/etc/irp/ipmi.pass",
          "chassis", "power" }
        local off = { table.unpack(base) }
        off[#off + 1] = "off"
        exec(ctx, off, { timeout = "30s" })
        local st = { table.unpack(base) }
        st[#st + 1] = "status"
        local r = exec(ctx, st, { timeout = "30s" })
        if not r.stdout:find("is off", 1, true) then
          ctx.fail("the BMC reports: " .. last_line(r.stdout))
        end
        return { fenced = "power off via BMC " .. v.primary_bmc }
      end,
      drill = { code = 0, stdout = "Chassis Power is off\n" },
    },

    step "fence-by-hand" {
      phase = "failover",
      title = "Fence {{primary}} by hand",
      when = function(ctx) return status_of(ctx, "fence-primary") ~= "succeeded" end,
      timeout = "10m",
      manual = [[
Make sure {{primary}} cannot come back as a primary while {{standby}} takes over. One of:
  - cloud: stop the instance (not just reboot it); virtual machine: power it off in the hypervisor;
  - physical: power it off through the PDU or the BMC web console;
  - if you cannot power it off: remove it from the network (security group / switch port) so no client reaches it.
Write down what you did: the rebuild steps later depend on it.
Answer "done: <how it is fenced>".]],
    },

    step "promote-patroni" {
      phase = "failover",
      title = "Promote {{standby}} with patronictl failover",
      doc = "Patroni promotes the candidate and updates the DCS, so every other member follows "
        .. "the new leader by itself.",
      when = function(ctx) return ctx.vars.mode == "patroni" and planned(ctx) == "promote" end,
      approval = "incident-commander",
      timeout = "3m",
      on_failure = "escalate", -- promote-by-hand follows
      run = function(ctx)
        local v = ctx.vars
        local member = result_of(ctx, "plan").member
        if type(member) ~= "string" then ctx.fail("no candidate member from the plan step") end
        local r = exec(ctx, ssh(v.standby, "sudo", "patronictl", "-c", v.patroni_config, "failover", v.cluster,
          "--candidate", member, "--force"), { timeout = "150s" })
        ctx.artifact("patronictl-failover.txt", r.stdout)
        if not r.stdout:find("Successfully failed over", 1, true) then
          ctx.fail("patronictl did not report success: " .. last_line(r.stdout))
        end
        return { promoted = member, via = "patronictl" }
      end,
      drill = {
        code = 0,
        stdout = "Current cluster topology\n"
          .. "+ Cluster: pg-main (7301234567890123456) ---+-----------+----+-----------+\n"
          .. "| Member | Host       | Role    | State     | TL | Lag in MB |\n"
          .. "| pg-02  | 10.30.0.12 | Replica | running   |  7 |           |\n"
          .. "| pg-03  | 10.30.0.13 | Replica | streaming |  7 |           |\n"
          .. "2026-11-25 03:21:07.412 Successfully failed over to \"pg-02\"\n",
      },
    },

    step "promote-pg-ctl" {
      phase = "failover",
      title = "Promote {{standby}} with pg_ctl promote",
      when = function(ctx) return ctx.vars.mode == "pg_ctl" and planned(ctx) == "promote" end,
      approval = "incident-commander",
      timeout = "3m",
      on_failure = "escalate",
      run = function(ctx)
        local v = ctx.vars
        local r = exec(ctx, ssh(v.standby, "sudo", "-u", "postgres", v.pg_bin .. "/pg_ctl", "promote",
          "-D", v.pgdata, "-w", "-t", "120"), { timeout = "150s" })
        if not r.stdout:find("server promoted", 1, true) then
          ctx.fail("pg_ctl did not report success: " .. last_line(r.stdout))
        end
        return { promoted = v.standby, via = "pg_ctl" }
      end,
      drill = { code = 0, stdout = "waiting for server to promote.... done\nserver promoted\n" },
    },

    step "promote-by-hand" {
      phase = "failover",
      title = "Promote {{standby}} by hand (the automated promotion failed)",
      when = function(ctx)
        return status_of(ctx, "promote-patroni") == "failed" or status_of(ctx, "promote-pg-ctl") == "failed"
      end,
      timeout = "15m",
      manual = [[
The automated promotion failed; the next escalation tier has been paged. Read its error in the step above, then on {{standby}}:
  - Patroni: sudo patronictl -c {{patroni_config}} failover {{cluster}} --candidate <member> (answer its prompts); if the DCS is down, stop Patroni on {{standby}} first and use pg_ctl;
  - pg_ctl:  sudo -u postgres {{pg_bin}}/pg_ctl promote -D {{pgdata}} -w
Check with: sudo -u postgres psql -c 'select pg_is_in_recovery()'  (f = promoted).
Answer "done" once it reports f.]],
    },

    step "check-promoted" {
      phase = "failover",
      title = "Stop here unless {{standby}} was promoted",
      doc = "Pure Lua. A denied approval skips the promotion: then nothing after it makes "
        .. "sense, so the run ends here (the fence stays in place).",
      timeout = "10s", idempotent = true,
      on_failure = "abort",
      run = function(ctx)
        local action = planned(ctx)
        if action == "already-promoted" then return { promoted_by = "patroni or earlier" } end
        for _, id in ipairs({ "promote-patroni", "promote-pg-ctl", "promote-by-hand" }) do
          if status_of(ctx, id) == "succeeded" then return { promoted_by = id } end
        end
        ctx.fail(ctx.vars.standby .. " was not promoted (approval denied or promotion skipped): "
          .. "stopping the failover here")
      end,
    },

    step "wait-writable" {
      phase = "failover",
      title = "Wait until {{standby}} accepts writes",
      doc = "Promotion first replays the WAL it already received; large backlogs take time. "
        .. "Also reads the new timeline from the current WAL file name.",
      timeout = "3m", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local f
        for i = 1, 24 do
          local r = psql_on(ctx, ctx.vars.standby, "select pg_is_in_recovery(), case when pg_is_in_recovery() "
            .. "then '' else pg_walfile_name(pg_current_wal_lsn()) end", { timeout = "20s", check = false })
          f = first_row(r.stdout)
          if r.code == 0 and f[1] == "f" then
            local timeline = tonumber((f[2] or ""):sub(1, 8), 16)
            ctx.log(ctx.vars.standby .. " is the primary now", { timeline = timeline, wal_file = f[2] })
            return { writable = true, timeline = timeline, wal_file = f[2] }
          end
          if i < 24 then ctx.sleep("5s") end
        end
        ctx.fail(ctx.vars.standby .. " is still in recovery after 2 minutes")
      end,
      drill = { code = 0, stdout = "f|00000008000000000000005A\n" },
    },

    -- Recovery ---------------------------------------------------------------

    step "repoint-dns" {
      phase = "recovery",
      title = "Point {{db_dns_name}} at {{standby}}",
      doc = "Replaces the CNAME with a dynamic DNS update (TSIG-signed), then asks the DNS "
        .. "server directly to prove it. Repeating it sets the same record.",
      timeout = "2m", retries = 3, backoff = "5s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local v = ctx.vars
        local name, target = v.db_dns_name .. ".", v.standby .. "."
        local script = table.concat({
          "server " .. v.dns_server,
          "update delete " .. name .. " CNAME",
          "update add " .. name .. " 30 CNAME " .. target,
          "send",
        }, "\n") .. "\n"
        ctx.exec { "nsupdate", "-k", v.nsupdate_key, stdin = script, timeout = "30s" }
        local r = ctx.exec { "dig", "+short", "@" .. v.dns_server, v.db_dns_name, "CNAME", timeout = "15s" }
        local got = (r.stdout:match("[^\r\n]+") or ""):lower()
        if got ~= target:lower() then
          ctx.fail(v.dns_server .. " answers '" .. got .. "' for " .. v.db_dns_name .. ", expected " .. target)
        end
        return { name = v.db_dns_name, target = v.standby, ttl = 30 }
      end,
      drill = { code = 0, stdout = "pg-02.db.internal.example.\n" },
    },

    step "reconnect-pooler" {
      phase = "recovery",
      title = "Make PgBouncer on {{pgbouncer_host}} reconnect to the new primary",
      doc = "RECONNECT closes each server connection once its client releases it; the new "
        .. "connections resolve the DNS name again. Clients stay connected to PgBouncer.",
      timeout = "1m", retries = 2, backoff = "5s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local v = ctx.vars
        local r = ctx.exec { "psql", "-X", "-h", v.pgbouncer_host, "-p", "6432", "-U", "pgbouncer",
          "-d", "pgbouncer", "-c", "RECONNECT", timeout = "30s" }
        return { pooler = v.pgbouncer_host, reply = last_line(r.stdout) }
      end,
      drill = { code = 0, stdout = "RECONNECT\n" },
    },

    step "verify-app-path" {
      phase = "recovery",
      title = "Prove that writes work through PgBouncer",
      doc = "Connects like the application does and asks for a transaction id, which only a "
        .. "primary can give. Waits out DNS caches and the pool's old connections.",
      timeout = "2m", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local v = ctx.vars
        local r, f
        for i = 1, 12 do
          r = ctx.exec { "psql", "-X", "-A", "-t", "-F", "|", "-h", v.pgbouncer_host, "-p", "6432",
            "-U", v.probe_user, "-d", v.app_db, "-c",
            "select pg_is_in_recovery(), inet_server_addr(), txid_current()",
            timeout = "10s", check = false }
          f = first_row(r.stdout)
          if r.code == 0 and f[1] == "f" then
            return { server = f[2], txid = f[3], attempts = i }
          end
          if i < 12 then ctx.sleep("5s") end
        end
        ctx.fail("no write through PgBouncer after a minute: " .. last_line(r.stderr))
      end,
      drill = { code = 0, stdout = "f|10.30.0.12|884123\n" },
    },

    step "app-health" {
      phase = "recovery",
      title = "Confirm the application is healthy",
      timeout = "15m",
      manual = [[
Writes work through PgBouncer (server {{steps.verify-app-path.result.server}}). Now the application itself:
  1. Error rate and latency back to normal on the dashboards; background jobs and queue consumers draining.
  2. Anything that bypasses PgBouncer or caches DNS (JVM services, cron jobs with a fixed IP, replicas used for reads): restart or repoint them.
  3. Expect slow queries for a while: the new primary's statistics and caches are cold (run ANALYZE on the hottest tables if plans look wrong).
Answer "done: <what you checked>".]],
    },

    step "follow-new-primary" {
      phase = "recovery",
      title = "Point the other standbys at {{standby}}",
      when = function(ctx) return ctx.vars.mode == "pg_ctl" end,
      timeout = "30m",
      manual = [[
Without Patroni, other standbys still try to stream from {{primary}}. On each of them (not on {{primary}}):
  1. sudo -u postgres psql -c "ALTER SYSTEM SET primary_conninfo = 'host={{standby}} user={{replication_user}} application_name=<this host>'"
  2. sudo -u postgres psql -c "select pg_reload_conf()"   (PostgreSQL 13 and later; older versions need a restart)
  3. Check: select status, sender_host from pg_stat_wal_receiver;  (streaming from {{standby}}; recovery_target_timeline 'latest', the default, follows the new timeline)
Answer "done: <standbys repointed, or none>".]],
    },

    step "check-replication" {
      phase = "recovery",
      title = "Check which standbys follow the new primary",
      timeout = "1m", retries = 2, backoff = "10s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local r = psql_on(ctx, ctx.vars.standby, "select count(*), coalesce(string_agg(application_name || ':' "
          .. "|| state || ':' || coalesce(sync_state, ''), ', '), '') from pg_stat_replication", { timeout = "30s" })
        local f = first_row(r.stdout)
        local n = tonumber(f[1]) or 0
        if n == 0 then
          ctx.log("no standby follows " .. ctx.vars.standby .. ": no redundancy until the rebuild is done")
        end
        return { standbys = n, detail = (f[2] ~= nil and f[2] ~= "") and f[2] or "none" }
      end,
      drill = { code = 0, stdout = "1|pg-03:streaming:async\n" },
    },

    step "check-wal-archiving" {
      phase = "recovery",
      title = "Check that the new primary archives WAL",
      doc = "Forces a WAL switch and waits for that segment to be archived. Without archiving "
        .. "there is no point-in-time recovery, and pg_wal grows until the disk is full.",
      timeout = "3m", retries = 1, backoff = "30s", idempotent = true,
      on_failure = "escalate",
      run = function(ctx)
        local sql = "select pg_walfile_name(%s), coalesce(last_archived_wal, ''), failed_count, "
          .. "coalesce(last_failed_wal, '') from pg_stat_archiver"
        local r = psql_on(ctx, ctx.vars.standby, sql:format("pg_switch_wal()"), { timeout = "30s" })
        local target = first_row(r.stdout)[1] or ""
        if not target:match("^%x+$") then ctx.fail("unexpected psql output: " .. last_line(r.stdout)) end
        local f
        for i = 1, 10 do
          f = first_row(psql_on(ctx, ctx.vars.standby, sql:format("pg_current_wal_lsn()"), { timeout = "30s" }).stdout)
          -- WAL file names sort in order (timeline, then position), so >= means archived.
          if (f[2] or "") >= target then
            return { archived = f[2], failed_count = tonumber(f[3]) or 0 }
          end
          if i < 10 then ctx.sleep("10s") end
        end
        ctx.fail("segment " .. target .. " not archived after 90 s (last archived " .. tostring(f[2])
          .. ", last failed " .. tostring(f[4]) .. "): check archive_command in the PostgreSQL log")
      end,
      drill = { code = 0, stdout = "00000008000000000000005A|00000008000000000000005A|0|\n" },
    },

    step "fresh-backup" {
      phase = "recovery",
      title = "Take a fresh base backup of the new primary",
      timeout = "30m",
      manual = [[
{{standby}} writes timeline {{steps.wait-writable.result.timeline}} now. Start a full base backup on it with your backup tool, so a restore does not depend on replaying across the failover:
  wal-g:     sudo -u postgres envdir /etc/wal-g.d/env wal-g backup-push {{pgdata}}
  pgBackRest: sudo -u postgres pgbackrest --stanza=<stanza> --type=full backup
  Barman:    barman backup <server>   (on the Barman host)
It can run in the background; answer when it has started.
Answer "done: <backup id or job>".]],
    },

    -- Rebuild ----------------------------------------------------------------

    step "bring-back-safely" {
      phase = "rebuild",
      title = "Bring {{primary}} back without starting PostgreSQL",
      timeout = "2h",
      manual = [[
Only when the cause of the outage on {{primary}} is understood and fixed (hardware replaced, disk healthy):
  1. Before it boots normally, make sure PostgreSQL and Patroni will NOT start by themselves: boot to rescue mode and run
       systemctl disable patroni {{pg_service}}
     (a plain boot would start the old primary on the old timeline).
  2. Boot it, and check you can SSH in: ssh {{primary}}, and that systemctl is-active patroni {{pg_service}} says inactive.
If it cannot be repaired, rebuild a new host with the same name instead and say so in the note.
Answer "done: <cause and fix>".]],
    },

    step "preserve-old-data" {
      phase = "rebuild",
      title = "Set the old data directory on {{primary}} aside",
      doc = "Renames the data directory instead of deleting it: transactions that never reached "
        .. "the standby exist only there, for the DBA to recover by hand. A rename on the same "
        .. "file system takes no time and no space; the new copy will need room for the database.",
      approval = "incident-commander",
      timeout = "2m",
      run = function(ctx)
        local v = ctx.vars
        local unit = (v.mode == "patroni") and "patroni" or v.pg_service
        exec(ctx, ssh(v.primary, "sudo", "systemctl", "stop", unit), { timeout = "60s" })
        local st = exec(ctx, ssh(v.primary, "sudo", "systemctl", "show", "-p", "ActiveState", "--value", unit),
          { timeout = "30s" })
        local state = st.stdout:match("%a+") or "unknown"
        if state ~= "inactive" and state ~= "failed" then
          ctx.fail(unit .. " on " .. v.primary .. " is " .. state .. ", not stopped")
        end
        local kept = v.pgdata .. ".pre-failover-" .. os.date("!%Y%m%dT%H%M%SZ")
        exec(ctx, ssh(v.primary, "sudo", "mv", "-T", "--", v.pgdata, kept), { timeout = "60s" })
        ctx.log("old data directory kept", { path = kept })
        return { kept = kept }
      end,
      drill = { code = 0, stdout = "inactive\n" },
    },

    step "rebuild-patroni" {
      phase = "rebuild",
      title = "Let Patroni rebuild {{primary}} as a replica",
      doc = "With an empty data directory and a leader in the DCS, Patroni clones the leader "
        .. "(pg_basebackup by default) and starts as a replica. A paused cluster does not do "
        .. "that by itself, so then the step asks for it with patronictl reinit.",
      when = function(ctx)
        return ctx.vars.mode == "patroni" and status_of(ctx, "preserve-old-data") == "succeeded"
      end,
      -- The reinit fails until the freshly started member has registered in the
      -- DCS: the retries give it that time. Starting an active unit is a no-op.
      timeout = "3m", retries = 3, backoff = "10s", idempotent = true,
      on_failure = "continue", -- rebuild-by-hand follows
      run = function(ctx)
        local v = ctx.vars
        exec(ctx, ssh(v.primary, "sudo", "systemctl", "enable", "--now", "patroni"), { timeout = "60s" })
        if not result_of(ctx, "cluster-state").paused then return { started = "patroni", reinit = false } end
        local member = (v.primary_member ~= "") and v.primary_member or short_name(v.primary)
        local r = exec(ctx, ssh(v.standby, "sudo", "patronictl", "-c", v.patroni_config, "reinit", v.cluster,
          member, "--force"), { timeout = "60s" })
        if not r.stdout:find("Success", 1, true) then
          ctx.fail("patronictl reinit " .. member .. " did not report success: " .. last_line(r.stdout))
        end
        return { started = "patroni", reinit = true, member = member }
      end,
      drill = { code = 0, stdout = "Success: reinitialize for member pg-01\n" },
    },

    step "rebuild-basebackup" {
      phase = "rebuild",
      title = "Clone {{standby}} onto {{primary}} with pg_basebackup",
      doc = "Streams a copy of the new primary with the WAL it needs (-X stream), writes the "
        .. "standby configuration (-R) and creates a replication slot (-C) so the new primary "
        .. "keeps WAL for it. Hours for a large database.",
      when = function(ctx)
        return ctx.vars.mode == "pg_ctl" and status_of(ctx, "preserve-old-data") == "succeeded"
      end,
      timeout = "6h",
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local slot = slot_name(v.primary)
        exec(ctx, ssh(v.primary, "sudo", "-u", "postgres", v.pg_bin .. "/pg_basebackup", "-h", v.standby,
          "-U", v.replication_user, "-D", v.pgdata, "-X", "stream", "-c", "fast", "-R", "-C", "-S", slot),
          { timeout = "359m" })
        exec(ctx, ssh(v.primary, "sudo", "systemctl", "enable", "--now", v.pg_service), { timeout = "60s" })
        return { slot = slot, upstream = v.standby }
      end,
      drill = { code = 0, stdout = "" },
    },

    step "wait-streaming" {
      phase = "rebuild",
      title = "Wait until {{primary}} streams from {{standby}}",
      when = function(ctx)
        return status_of(ctx, "rebuild-patroni") == "succeeded" or status_of(ctx, "rebuild-basebackup") == "succeeded"
      end,
      timeout = "1h", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local f
        for i = 1, 150 do
          local r = psql_on(ctx, v.primary, "select pg_is_in_recovery(), coalesce((select status from "
            .. "pg_stat_wal_receiver), 'none'), coalesce(extract(epoch from now() - "
            .. "pg_last_xact_replay_timestamp())::int, -1)", { timeout = "20s", check = false })
          f = first_row(r.stdout)
          if r.code == 0 and f[1] == "t" and f[2] == "streaming" then
            return { streaming = true, replay_delay_s = tonumber(f[3]) or -1 }
          end
          if i < 150 then ctx.sleep("20s") end
        end
        ctx.fail(v.primary .. " is not streaming after 50 minutes (last state: " .. tostring(f[2]) .. ")")
      end,
      drill = { code = 0, stdout = "t|streaming|2\n" },
    },

    step "rebuild-by-hand" {
      phase = "rebuild",
      title = "Finish the rebuild of {{primary}} by hand",
      when = function(ctx)
        for _, id in ipairs({ "rebuild-patroni", "rebuild-basebackup", "wait-streaming" }) do
          if status_of(ctx, id) == "failed" then return true end
        end
        return false
      end,
      timeout = "4h",
      manual = [[
The automated rebuild did not end with {{primary}} streaming. Look at the failed step's message, then:
  - Patroni: sudo patronictl -c {{patroni_config}} reinit {{cluster}} <member of {{primary}}>, and watch patronictl list;
  - pg_ctl:  on {{primary}}, as postgres: {{pg_bin}}/pg_basebackup -h {{standby}} -U {{replication_user}} -D {{pgdata}} -X stream -c fast -R -P, then start {{pg_service}}.
Check on {{primary}}: select status from pg_stat_wal_receiver;  (streaming).
Answer "done" when it streams, or "skip" to leave the cluster without a rebuilt standby for now (say so to the incident commander).]],
    },

    -- Post-incident ---------------------------------------------------------

    step "summary" {
      phase = "post-incident",
      title = "Write the failover summary",
      doc = "Pure Lua over the recorded results.",
      timeout = "30s", idempotent = true,
      on_failure = "continue",
      run = function(ctx)
        local v = ctx.vars
        local ss = result_of(ctx, "standby-state")
        local w = result_of(ctx, "wait-writable")
        local fence = result_of(ctx, "fence-primary").fenced
          or ((status_of(ctx, "fence-by-hand") == "succeeded") and "by hand (see the operator's note)")
          or "NOT CONFIRMED"
        local lines = {
          "# PostgreSQL failover: " .. v.primary .. " -> " .. v.standby,
          "",
          "- run: " .. tostring(ctx.run_id or "(none)") .. (ctx.drill and " (drill)" or ""),
          "- mode: " .. v.mode .. "; plan: " .. tostring(result_of(ctx, "plan").action or "unknown"),
          "- fencing: " .. tostring(fence),
          "- last commit replayed before promotion: " .. tostring(ss.last_replay_utc or "unknown")
            .. " UTC (later commits on the old primary may be lost)",
          "- new timeline: " .. tostring(w.timeline or "unknown"),
          "- application path: " .. tostring(status_of(ctx, "verify-app-path") or "not verified"),
          "- WAL archiving: " .. tostring(status_of(ctx, "check-wal-archiving") or "not checked"),
          "- old data directory kept at: " .. tostring(result_of(ctx, "preserve-old-data").kept or "not kept"),
          "- rebuilt standby streaming: " .. tostring(status_of(ctx, "wait-streaming") or "no"),
        }
        local text = table.concat(lines, "\n") .. "\n"
        local a = ctx.artifact("failover-summary.md", text)
        ctx.notify("slack-dba", "Failover " .. v.primary .. " -> " .. v.standby .. " finished; summary stored",
          { sha256 = a.sha256 })
        return { summary_sha256 = a.sha256 }
      end,
    },

    step "review" {
      phase = "post-incident",
      title = "Review the failover",
      timeout = "1h",
      manual = [[
Within 5 business days, with `irp report` of this run:
  - why {{primary}} was lost, and why no automatic failover happened (maintenance mode left on? lag limit? DCS?);
  - time to promote (objective 15 minutes) and to restore the application (objective 30 minutes); data lost;
  - if Patroni is still in maintenance mode, resume it now (patronictl resume {{cluster}}) once the cluster is healthy;
  - whether to switch back to {{primary}} in a quiet hour (patronictl switchover), and when the kept old data directory may be deleted.
Answer "done: <action items and owners>".]],
    },
  },
}
