-- irpkit: helpers shared by irp's shipped plugins (and yours: require "irpkit").
--
-- kit.check(opts, spec, where)      validates a constructor's options at load time
--                                   (= `irp check` time); errors name the playbook's line
-- kit.step(id, opts, run, drill)    builds `step "id" {...}` with the ordinary step fields
-- kit.render(ctx, text)             fills {{input}} and {{steps.ID.result.F}} at run time
-- kit.exec(ctx, opts, argv, extra)  runs argv locally, or on opts.host over ssh
-- kit.http(ctx, opts, method, url, body, ok_codes)   JSON over HTTP, decoded answer
-- kit.shq(s), kit.host_ok(h), kit.addr_ok(a), kit.is_template(s)
-- kit.url_ok(u), kit.url_check (a kit.check `check`), kit.render_url(ctx, name, text)
local json = require "json"

local kit = {}

-- Fields of `step` a constructor passes through unchanged.
kit.STEP_FIELDS = {
  title = "string", phase = "string", doc = "string", approval = "string",
  when = "any", timeout = "duration", retries = "number", backoff = "duration",
  on_failure = "string", idempotent = "boolean", rollback = "function",
  notify = "table", owner = "string", tags = "table", drill = "table",
}

function kit.is_template(s)
  return type(s) == "string" and s:find("{{", 1, true) ~= nil
end

function kit.host_ok(h)
  return type(h) == "string" and h:match("^[%w_][%w_%.%-]*@?[%w_%.%-]*$") ~= nil
         and h:sub(1, 1) ~= "-"
end

-- Dotted quad; no leading zeros: nft and iptables read "010" as octal (8).
local function ipv4_ok(ip)
  local o = { ip:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$") }
  if #o ~= 4 then return false end
  for _, x in ipairs(o) do
    if tonumber(x) > 255 or (#x > 1 and x:sub(1, 1) == "0") then return false end
  end
  return true
end

-- Number of 16-bit groups in a colon-separated run of hex groups ("" is 0),
-- or nil; v4_tail: its last field may be a dotted IPv4 address (2 groups).
local function ipv6_groups(part, v4_tail)
  if part == "" then return 0 end
  local fields = {}
  for f in (part .. ":"):gmatch("([^:]*):") do fields[#fields + 1] = f end
  local n = 0
  for i, f in ipairs(fields) do
    if v4_tail and i == #fields and f:find(".", 1, true) then
      if not ipv4_ok(f) then return nil end
      n = n + 2
    elseif f:match("^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

-- RFC 4291 text form: 8 groups of 1-4 hex digits, or fewer with exactly one
-- "::" standing for the missing ones; the last 32 bits may be written as an
-- IPv4 address (::ffff:192.0.2.1).
local function ipv6_ok(ip)
  if not ip:find(":", 1, true) or #ip > 45 then return false end
  local a, b = ip:find("::", 1, true)
  if not a then
    return ipv6_groups(ip, true) == 8
  end
  if ip:find("::", a + 1, true) then return false end -- a second "::" (or ":::")
  local head, tail = ipv6_groups(ip:sub(1, a - 1), false), ipv6_groups(ip:sub(b + 1), true)
  return head ~= nil and tail ~= nil and head + tail <= 7
end

-- IPv4 or IPv6 address, with an optional /prefix (0-32 or 0-128).
function kit.addr_ok(a)
  if type(a) ~= "string" then return false end
  local ip, prefix = a:match("^([^/]+)/(%d%d?%d?)$")
  ip = ip or a
  local n = prefix and tonumber(prefix)
  if ipv4_ok(ip) then return n == nil or n <= 32 end
  if ipv6_ok(ip) then return n == nil or n <= 128 end
  return false
end

-- An http:// or https:// URL naming a host (ctx.http takes no other scheme).
function kit.url_ok(u)
  return type(u) == "string" and u:match("^https?://[^/%s?#]") ~= nil and not u:find("%s")
end

-- For kit.check specs: check = kit.url_check (a template is checked later,
-- by kit.render_url).
function kit.url_check(u)
  if kit.url_ok(u) then return true end
  return false, "'" .. tostring(u) .. "' is not an http:// or https:// URL"
end

-- kit.render, then fails the step unless the result is an http(s) URL.
function kit.render_url(ctx, name, text)
  local u = kit.render(ctx, text)
  if not kit.url_ok(u) then
    ctx.fail(name .. ": '" .. u .. "'" .. (u ~= text and " (from '" .. text .. "')" or "")
             .. " is not an http:// or https:// URL")
  end
  return u
end

-- Single-quotes s for a POSIX shell (ssh joins remote arguments with spaces).
function kit.shq(s)
  s = tostring(s)
  if s:match("^[%w%.%-_/=:@,+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function where_error(where, msg, level)
  error(where .. ": " .. msg, level + 1)
end

local function type_ok(want, v)
  if want == "any" then return true end
  if want == "duration" then return type(v) == "string" or type(v) == "number" end
  if want == "list" then
    if type(v) ~= "table" then return false end
    for _, x in ipairs(v) do if type(x) ~= "string" then return false end end
    return true
  end
  return type(v) == want
end

-- Validates opts against spec = { name = { type, required = bool, enum = {...},
-- check = function(v) -> ok, why, literal = bool } } plus kit.STEP_FIELDS.
-- Raises at the position of the playbook that called the constructor: level
-- 3 = kit.check <- constructor <- playbook. Values containing {{templates}}
-- are checked at run time instead, except a `literal` option (one the
-- constructor acts on at load, such as a method): a template is refused.
function kit.check(opts, spec, where, level)
  level = (level or 2) + 1
  if type(opts) ~= "table" then
    where_error(where, "expects a table of options ({ ... }), not " .. type(opts), level)
  end
  for k in pairs(opts) do
    if type(k) ~= "string" or (spec[k] == nil and kit.STEP_FIELDS[k] == nil) then
      local names = {}
      for n in pairs(spec) do names[#names + 1] = n end
      table.sort(names)
      where_error(where, "unknown option '" .. tostring(k) .. "' (options: " ..
                  table.concat(names, ", ") .. ", and the step fields)", level)
    end
  end
  for k, want in pairs(kit.STEP_FIELDS) do
    if opts[k] ~= nil and not type_ok(want, opts[k]) then
      where_error(where, "option '" .. k .. "' must be a " .. want .. ", not " .. type(opts[k]), level)
    end
  end
  local names = {}
  for n in pairs(spec) do names[#names + 1] = n end
  table.sort(names)
  for _, name in ipairs(names) do
    local s, v = spec[name], opts[name]
    if v == nil then
      if s.required then where_error(where, "option '" .. name .. "' is required", level) end
    else
      if not type_ok(s.type or "string", v) then
        where_error(where, "option '" .. name .. "' must be a " .. (s.type or "string") ..
                    ", not " .. type(v), level)
      end
      if s.literal and kit.is_template(v) then
        where_error(where, "option '" .. name .. "' is chosen when the playbook loads: write it out" ..
                    (s.enum and " (" .. table.concat(s.enum, ", ") .. ")" or "") ..
                    ", not a template ('" .. v .. "')", level)
      end
      if s.enum and not kit.is_template(v) then
        local found = false
        for _, e in ipairs(s.enum) do found = found or e == v end
        if not found then
          where_error(where, "option '" .. name .. "' must be one of " ..
                      table.concat(s.enum, ", ") .. ", not '" .. tostring(v) .. "'", level)
        end
      end
      if s.check and not kit.is_template(v) then
        local ok, why = s.check(v)
        if not ok then where_error(where, "option '" .. name .. "': " .. (why or "invalid value"), level) end
      end
    end
  end
  return opts
end

-- step "id" { run = run, drill = opts.drill or default_drill, <step fields of opts> }
function kit.step(id, opts, run, default_drill, title)
  local fields = { run = run, drill = opts.drill or default_drill, title = opts.title or title }
  for k in pairs(kit.STEP_FIELDS) do
    if fields[k] == nil and opts[k] ~= nil then fields[k] = opts[k] end
  end
  return step(id)(fields)
end

-- {{name}} -> ctx.vars.name; {{steps.ID.result.F...}} / {{steps.ID.status}}.
-- An unknown name fails the step (a typo must not reach a firewall).
function kit.render(ctx, text)
  if type(text) ~= "string" then return text end
  return (text:gsub("{{%s*([%w_%.%-]+)%s*}}", function(name)
    local id, rest = name:match("^steps%.([%w_%-]+)%.(.+)$")
    if id then
      local s = ctx.steps[id]
      local v = s
      for part in rest:gmatch("[^%.]+") do
        if type(v) ~= "table" then v = nil break end
        v = v[part]
      end
      if v == nil then ctx.fail("{{" .. name .. "}} has no value yet") end
      return tostring(v)
    end
    local v = ctx.vars[name]
    if v == nil then ctx.fail("{{" .. name .. "}}: no input named '" .. name .. "'") end
    return v
  end))
end

-- Renders every string of a list.
function kit.render_list(ctx, list)
  local out = {}
  for i, v in ipairs(list or {}) do out[i] = kit.render(ctx, v) end
  return out
end

-- Runs argv (a list of strings) locally, or on opts.host over ssh (BatchMode,
-- opts.ssh_options with their {{templates}} filled, each remote argument
-- quoted). opts.sudo = true prefixes sudo -n; opts.run_as = "user" runs as
-- that user (runuser locally, sudo -u over ssh). extra: ctx.exec options (stdin, timeout, check, env, cwd).
function kit.exec(ctx, opts, argv, extra)
  local cmd = {}
  local host = opts.host and kit.render(ctx, opts.host)
  if host and host ~= "" and host ~= "local" then
    if not kit.host_ok(host) then ctx.fail("host '" .. host .. "' is not a host name") end
    local pre = {}
    if opts.run_as then pre = { "sudo", "-n", "-u", opts.run_as }
    elseif opts.sudo then pre = { "sudo", "-n" } end
    local remote = {}
    for _, a in ipairs(pre) do remote[#remote + 1] = a end
    for _, a in ipairs(argv) do remote[#remote + 1] = kit.shq(a) end
    cmd = { "ssh", "-o", "BatchMode=yes" }
    for _, o in ipairs(opts.ssh_options or {}) do cmd[#cmd + 1] = kit.render(ctx, o) end
    cmd[#cmd + 1] = host
    cmd[#cmd + 1] = "--"
    cmd[#cmd + 1] = table.concat(remote, " ")
  else
    if opts.run_as then cmd = { "runuser", "-u", opts.run_as, "--" }
    elseif opts.sudo then cmd = { "sudo", "-n" } end
    for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
  end
  local call = {}
  for i, a in ipairs(cmd) do call[i] = a end
  for k, v in pairs(extra or {}) do call[k] = v end
  return ctx.exec(call), cmd
end

-- ctx.http with JSON: body (a table) is sent as JSON; the answer's body is
-- decoded when it is JSON. opts.auth_secret names a secret holding the whole
-- Authorization header value ("Bearer ..."). A status outside ok_codes
-- (default: 2xx) fails the step with the status and the start of the body.
function kit.http(ctx, opts, method, url, body, ok_codes)
  local headers = { Accept = "application/json" }
  if opts.auth_secret then headers.Authorization = ctx.secret(opts.auth_secret) end
  local req = { method = method, url = url, headers = headers, timeout = opts.http_timeout or "30s" }
  if body ~= nil then req.json = body end
  local r = ctx.http(req)
  local ok = r.status >= 200 and r.status < 300
  if ok_codes then
    ok = false
    for _, c in ipairs(ok_codes) do ok = ok or c == r.status end
  end
  if not ok then
    ctx.fail(method .. " " .. url .. " answered " .. r.status .. ": " .. tostring(r.body):sub(1, 200))
  end
  local data = nil
  if type(r.body) == "string" and r.body:match("^%s*[%[{]") then data = json.decode(r.body) end
  return data, r
end

-- Joins a base URL and path parts (each part is URL-escaped).
function kit.url(base, ...)
  local out = base:gsub("/+$", "")
  for _, p in ipairs({ ... }) do
    out = out .. "/" .. tostring(p):gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", c:byte())
    end)
  end
  return out
end

function kit.now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

return kit
