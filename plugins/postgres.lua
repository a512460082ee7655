-- postgres: PostgreSQL failover and backup restore with the standard tools.
--
--   postgres.promote { id=, pgdata=, host=, run_as="postgres", bin_dir=, conninfo=, timeout_s=60 }
--       pg_ctl promote -D pgdata -w -t timeout_s, then (with conninfo) psql
--       checks that SELECT pg_is_in_recovery() is now false.
--   postgres.patroni_failover { id=, config=, cluster=, candidate=, host=, run_as=, wait_s=60 }
--       patronictl -c config list cluster -f json: candidate must be a member;
--       if it already is the running Leader, nothing more is done
--       (failed_over = false). Else patronictl -c config failover cluster
--       --candidate candidate --force, then patronictl list every 2 s until
--       candidate is the running Leader on a timeline above the one before
--       (promotion finished; at most wait_s seconds).
--       Result: cluster, leader, previous (the old leader, or "none" when no
--       member led), timeline, failed_over.
--   postgres.basebackup { id=, source=, pgdata=, host=, run_as="postgres", bin_dir=,
--                         standby = true, start = false, port=, log= }
--       pg_basebackup -d source -D pgdata -X stream -c fast [-R]; with start,
--       pg_ctl start -D pgdata -w [-o "-p port"] -l log, then pg_ctl status.
-- Commands run locally (host absent or "local": through runuser as run_as)
-- or on host over ssh (sudo -n -u run_as). bin_dir: where pg_ctl lives when
-- it is not on PATH (Debian: /usr/lib/postgresql/16/bin).
local kit = require "irpkit"
local json = require "json"

local M = {}

local function bin(opts, name)
  return opts.bin_dir and (opts.bin_dir:gsub("/+$", "") .. "/" .. name) or name
end

local path_check = function(p) return kit.is_template(p) or p:sub(1, 1) == "/", "must be an absolute path" end

local common = {
  id = { type = "string", required = true },
  host = { type = "string", check = function(h) return h == "local" or kit.host_ok(h), "not a host name: " .. h end },
  run_as = { type = "string" },
  bin_dir = { type = "string", check = path_check },
  ssh_options = { type = "list" },
}

local function spec(extra)
  local s = {}
  for k, v in pairs(common) do s[k] = v end
  for k, v in pairs(extra) do s[k] = v end
  return s
end

local function with_user(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.run_as == nil then o.run_as = "postgres" end
  if o.run_as == "" then o.run_as = nil end
  return o
end

-- Last non-empty line of text.
local function last_line(text)
  local last
  for l in text:gmatch("[^\n]+") do if l:match("%S") then last = l end end
  return last and last:match("^%s*(.-)%s*$")
end

function M.promote(opts)
  kit.check(opts, spec {
    pgdata = { type = "string", required = true, check = path_check },
    conninfo = { type = "string" },
    timeout_s = { type = "number" },
  }, "postgres.promote")
  local o = with_user(opts)
  return kit.step(opts.id, opts, function(ctx)
    local pgdata = kit.render(ctx, opts.pgdata)
    local r = kit.exec(ctx, o, { bin(o, "pg_ctl"), "promote", "-D", pgdata, "-w", "-t",
                                 tostring(opts.timeout_s or 60) }, { timeout = (opts.timeout_s or 60) + 30 })
    local out = { pgdata = pgdata, promoted = true, pg_ctl = last_line(r.stdout) }
    if opts.conninfo then
      local q = kit.exec(ctx, o, { bin(o, "psql"), "-X", "-A", "-t", "-d", kit.render(ctx, opts.conninfo),
                                   "-c", "SELECT pg_is_in_recovery()" }, { timeout = "30s" })
      local v = last_line(q.stdout)
      if v ~= "f" then ctx.fail("after promote, pg_is_in_recovery() is " .. tostring(v) .. " (expected f)") end
      out.in_recovery = false
    end
    return out
  end, { stdout = "waiting for server to promote.... done\nserver promoted\nf\n" },
  "Promote the standby in " .. opts.pgdata)
end

-- `patronictl list CLUSTER -f json` as a list of members, and whether the
-- answer was simulated (a drill).
local function patroni_members(ctx, o, conf, cluster)
  local r = kit.exec(ctx, o, { bin(o, "patronictl"), "-c", conf, "list", cluster, "-f", "json" }, { timeout = "30s" })
  local members = json.decode(r.stdout:match("%[.*%]") or "")
  if type(members) ~= "table" then ctx.fail("cannot read patronictl list: " .. r.stdout:sub(1, 200)) end
  return members, r.simulated
end

local function member_named(members, name)
  for _, m in ipairs(members) do if m.Member == name then return m end end
end

local function leader_of(members)
  for _, m in ipairs(members) do if m.Role == "Leader" then return m end end
end

local function summary(members)
  local t = {}
  for _, m in ipairs(members) do t[#t + 1] = tostring(m.Member) .. " " .. tostring(m.Role) .. "/" .. tostring(m.State) end
  return #t > 0 and table.concat(t, ", ") or "no members"
end

function M.patroni_failover(opts)
  kit.check(opts, spec {
    config = { type = "string", required = true, check = path_check },
    cluster = { type = "string", required = true },
    candidate = { type = "string", required = true },
    wait_s = { type = "number", check = function(n) return n >= 0 and n <= 3600, "must be from 0 to 3600 seconds" end },
  }, "postgres.patroni_failover")
  local o = with_user(opts)
  if opts.run_as == nil then o.run_as = nil end -- patronictl usually runs as the caller
  local wait_s = opts.wait_s or 60
  return kit.step(opts.id, opts, function(ctx)
    local conf, cluster, cand = kit.render(ctx, opts.config), kit.render(ctx, opts.cluster),
                                kit.render(ctx, opts.candidate)
    -- Patroni's view first: the candidate must be a member, and a candidate
    -- that already leads (Patroni failed over by itself, or this step ran
    -- before a crash) is not failed over again.
    local before, simulated = patroni_members(ctx, o, conf, cluster)
    local old = leader_of(before)
    local c = member_named(before, cand)
    if not simulated then
      if not c then ctx.fail(cand .. " is not a member of " .. cluster .. " (" .. summary(before) .. ")") end
      if c.Role == "Leader" and c.State == "running" then
        ctx.log(cand .. " already leads " .. cluster .. ": no failover", { members = summary(before) })
        return { cluster = cluster, leader = cand, previous = cand, timeline = c.TL, failed_over = false }
      end
    end
    kit.exec(ctx, o, { bin(o, "patronictl"), "-c", conf, "failover", cluster, "--candidate", cand, "--force" },
             { timeout = "3m" })
    -- "none": no member led (its PostgreSQL is lost, its leader key gone)
    local previous = old and old.Member or "none"
    -- The timeline before: a promotion ends by starting a new one.
    local tl_before = math.max(tonumber(old and old.TL) or 0, tonumber(c and c.TL) or 0)
    -- The candidate holds the leader key in the DCS before its PostgreSQL
    -- has finished promoting: wait until it runs as Leader on a new timeline
    -- (wait_s), so the next step can write.
    local after
    for i = 0, wait_s // 2 do
      after = patroni_members(ctx, o, conf, cluster)
      local m = member_named(after, cand)
      if m and m.Role == "Leader" and m.State == "running" and (m.TL == nil or (tonumber(m.TL) or 0) > tl_before) then
        return { cluster = cluster, leader = cand, previous = previous, timeline = m.TL, failed_over = true }
      end
      if simulated then -- fixed drill text: it cannot name this run's candidate
        ctx.log("drill: the simulated patronictl list does not show " .. cand .. " as the running Leader (not checked in a drill)")
        return { cluster = cluster, leader = cand, previous = previous, failed_over = true }
      end
      if i < wait_s // 2 then ctx.sleep("2s") end
    end
    ctx.fail(cand .. " is not the running leader of " .. cluster .. " " .. wait_s .. " s after the failover ("
             .. summary(after) .. ")")
  end, { stdout = '[{"Cluster":"pg-main","Member":"pg-1","Host":"10.0.0.11","Role":"Leader","State":"running","TL":5},'
                 .. '{"Cluster":"pg-main","Member":"pg-2","Host":"10.0.0.12","Role":"Replica","State":"running","TL":5}]\n' },
  "Patroni failover of " .. opts.cluster .. " to " .. opts.candidate)
end

function M.basebackup(opts)
  kit.check(opts, spec {
    source = { type = "string", required = true },
    pgdata = { type = "string", required = true, check = path_check },
    standby = { type = "boolean" },
    start = { type = "boolean" },
    port = { type = "number" },
    log = { type = "string", check = path_check },
  }, "postgres.basebackup")
  local o = with_user(opts)
  return kit.step(opts.id, opts, function(ctx)
    local pgdata = kit.render(ctx, opts.pgdata)
    local argv = { bin(o, "pg_basebackup"), "-d", kit.render(ctx, opts.source), "-D", pgdata,
                   "-X", "stream", "-c", "fast", "--no-password" }
    if opts.standby ~= false then argv[#argv + 1] = "-R" end
    kit.exec(ctx, o, argv, { timeout = "4h" })
    local out = { pgdata = pgdata, standby = opts.standby ~= false, started = false }
    if opts.start then
      local s = { bin(o, "pg_ctl"), "start", "-D", pgdata, "-w", "-t", "120",
                  "-l", opts.log and kit.render(ctx, opts.log) or (pgdata .. "/irp-start.log") }
      if opts.port then s[#s + 1] = "-o"; s[#s + 1] = "-p " .. math.tointeger(opts.port) end
      kit.exec(ctx, o, s, { timeout = "3m" })
      local st = kit.exec(ctx, o, { bin(o, "pg_ctl"), "status", "-D", pgdata }, { timeout = "30s" })
      if not st.stdout:find("server is running", 1, true) then ctx.fail("the restored server is not running") end
      out.started = true
    end
    return out
  end, { stdout = "waiting for server to start.... done\nserver started\npg_ctl: server is running (PID: 4242)\n" },
  "Restore " .. opts.pgdata .. " with pg_basebackup")
end

return M
