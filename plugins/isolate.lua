-- isolate: cut a host off the network, keeping only management addresses.
--
--   isolate.firewall { id=, host=, allow={...}, method="nftables"|"iptables", ... }
--       over ssh (or on this machine with host = "local"): installs a drop-all
--       table/chain that still accepts loopback and the `allow` addresses, then
--       reads it back. `allow` must contain the address you reach the host
--       from, or you lose it too: it is required for remote hosts.
--   isolate.release { id=, host=, method=, ... }      removes that table/chain
--   isolate.edr { id=, url=, host=, auth_secret= }   an EDR's HTTP API:
--       POST {url}/hosts/{host}/isolate, then GET {url}/hosts/{host} until
--       it reports isolated (use retries).
local kit = require "irpkit"

local M = {}

local NFT_TABLE = "irp_isolation"
local IPT_CHAIN = "IRP_ISOLATE"

local function addr_list(v)
  if type(v) ~= "table" then return false, "must be a list of addresses" end
  for _, a in ipairs(v) do
    if not kit.is_template(a) and not kit.addr_ok(a) then
      return false, "'" .. tostring(a) .. "' is not an IP address or range"
    end
  end
  return true
end

local common = {
  id = { type = "string", required = true },
  host = { type = "string", required = true,
           check = function(h) return h == "local" or kit.host_ok(h), "not a host name: " .. h end },
  method = { type = "string", enum = { "nftables", "iptables" }, literal = true },
  sudo = { type = "boolean" },
  ssh_options = { type = "list" },
}

local function spec_with(extra)
  local s = {}
  for k, v in pairs(common) do s[k] = v end
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

local function nft_script(allow)
  local v4, v6 = {}, {}
  for _, a in ipairs(allow) do
    if a:find(":", 1, true) then v6[#v6 + 1] = a else v4[#v4 + 1] = a end
  end
  local lines = {
    "table inet " .. NFT_TABLE,
    "delete table inet " .. NFT_TABLE,
    "table inet " .. NFT_TABLE .. " {",
    "  chain input { type filter hook input priority -200; policy drop;",
    '    iif "lo" accept',
  }
  local function allow_rules(dir)
    if #v4 > 0 then lines[#lines + 1] = "    ip " .. dir .. " { " .. table.concat(v4, ", ") .. " } accept" end
    if #v6 > 0 then lines[#lines + 1] = "    ip6 " .. dir .. " { " .. table.concat(v6, ", ") .. " } accept" end
  end
  allow_rules("saddr")
  lines[#lines + 1] = "  }"
  lines[#lines + 1] = "  chain output { type filter hook output priority -200; policy drop;"
  lines[#lines + 1] = '    oif "lo" accept'
  allow_rules("daddr")
  lines[#lines + 1] = "  }"
  lines[#lines + 1] = "  chain forward { type filter hook forward priority -200; policy drop; }"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- iptables: IPv4 with iptables and IPv6 with ip6tables (both, or IPv6
-- would stay open); the addresses arrive as "$@" (never inside the script).
local IPT_SCRIPT = [[
set -e
for ipt in iptables ip6tables; do
  $ipt -N IRP_ISOLATE 2>/dev/null || $ipt -F IRP_ISOLATE
  $ipt -A IRP_ISOLATE -i lo -j ACCEPT
  $ipt -A IRP_ISOLATE -o lo -j ACCEPT
  for a in "$@"; do
    case "$a" in *:*) [ $ipt = ip6tables ] || continue;; *) [ $ipt = iptables ] || continue;; esac
    $ipt -A IRP_ISOLATE -s "$a" -j ACCEPT
    $ipt -A IRP_ISOLATE -d "$a" -j ACCEPT
  done
  $ipt -A IRP_ISOLATE -j DROP
  for c in INPUT OUTPUT FORWARD; do $ipt -C "$c" -j IRP_ISOLATE 2>/dev/null || $ipt -I "$c" 1 -j IRP_ISOLATE; done
  $ipt -S IRP_ISOLATE
done
]]

function M.firewall(opts)
  kit.check(opts, spec_with {
    allow = { type = "table", check = addr_list },
  }, "isolate.firewall")
  if opts.host ~= "local" and not kit.is_template(opts.host) and (opts.allow == nil or #opts.allow == 0) then
    error("isolate.firewall: option 'allow' must list the management address(es) you reach "
          .. opts.host .. " from (or the isolation cuts you off too)", 2)
  end
  local method = opts.method or "nftables"
  return kit.step(opts.id, opts, function(ctx)
    local allow = kit.render_list(ctx, opts.allow)
    for _, a in ipairs(allow) do
      if not kit.addr_ok(a) then ctx.fail("allow: '" .. a .. "' is not an IP address or range") end
    end
    local r
    if method == "nftables" then
      r = kit.exec(ctx, opts, { "sh", "-c", "nft -f - && nft list table inet " .. NFT_TABLE },
                   { stdin = nft_script(allow), timeout = "60s" })
      if not r.stdout:find("policy drop", 1, true) then
        ctx.fail("nft did not show the isolation table: " .. r.stdout:sub(1, 200))
      end
    else
      local argv = { "sh", "-c", IPT_SCRIPT, "irp-isolate" }
      for _, a in ipairs(allow) do argv[#argv + 1] = a end
      r = kit.exec(ctx, opts, argv, { timeout = "60s" })
      if not r.stdout:find("-A " .. IPT_CHAIN .. " -j DROP", 1, true) then
        ctx.fail("iptables did not show the isolation chain: " .. r.stdout:sub(1, 200))
      end
    end
    ctx.artifact(opts.id .. "-rules.txt", r.stdout)
    return { host = kit.render(ctx, opts.host), method = method, allowed = allow, isolated = true }
  end, method == "nftables" and {
    stdout = "table inet irp_isolation {\n\tchain input {\n\t\ttype filter hook input priority -200; policy drop;\n"
          .. "\t\tiif \"lo\" accept\n\t\tip saddr { 10.0.0.5 } accept\n\t}\n}\n",
  } or {
    stdout = "-N IRP_ISOLATE\n-A IRP_ISOLATE -i lo -j ACCEPT\n-A IRP_ISOLATE -o lo -j ACCEPT\n"
          .. "-A IRP_ISOLATE -s 10.0.0.5/32 -j ACCEPT\n-A IRP_ISOLATE -d 10.0.0.5/32 -j ACCEPT\n"
          .. "-A IRP_ISOLATE -j DROP\n-N IRP_ISOLATE\n-A IRP_ISOLATE -i lo -j ACCEPT\n"
          .. "-A IRP_ISOLATE -o lo -j ACCEPT\n-A IRP_ISOLATE -j DROP\n",
  }, "Isolate " .. opts.host .. " (" .. method .. ")")
end

local IPT_RELEASE = [[
for ipt in iptables ip6tables; do
  for c in INPUT OUTPUT FORWARD; do while $ipt -D "$c" -j IRP_ISOLATE 2>/dev/null; do :; done; done
  $ipt -F IRP_ISOLATE 2>/dev/null || true
  $ipt -X IRP_ISOLATE 2>/dev/null || true
done
echo released
]]

function M.release(opts)
  kit.check(opts, spec_with(), "isolate.release")
  local method = opts.method or "nftables"
  return kit.step(opts.id, opts, function(ctx)
    local script = method == "nftables"
      and "nft delete table inet " .. NFT_TABLE .. " 2>/dev/null; nft list tables; echo released"
      or IPT_RELEASE
    local r = kit.exec(ctx, opts, { "sh", "-c", script }, { timeout = "60s" })
    if r.stdout:find(NFT_TABLE, 1, true) then ctx.fail("the isolation table is still there") end
    return { host = kit.render(ctx, opts.host), released = true }
  end, { stdout = "table inet filter\nreleased\n" }, "Release " .. opts.host .. " from isolation")
end

function M.edr(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    url = { type = "string", required = true, check = kit.url_check },
    host = { type = "string", required = true },
    auth_secret = { type = "string" },
    reason = { type = "string" },
  }, "isolate.edr")
  return kit.step(opts.id, opts, function(ctx)
    local host, base = kit.render(ctx, opts.host), kit.render_url(ctx, "url", opts.url)
    local job = kit.http(ctx, opts, "POST", kit.url(base, "hosts", host, "isolate"),
                         { reason = kit.render(ctx, opts.reason or "irp run " .. tostring(ctx.run_id)) })
    local state = kit.http(ctx, opts, "GET", kit.url(base, "hosts", host))
    local isolated = type(state) == "table" and (state.isolated == true or state.status == "isolated"
                                                 or state.containment == "contained")
    if not isolated then ctx.fail("the EDR does not report " .. host .. " isolated yet") end
    return { host = host, isolated = true, job = type(job) == "table" and (job.job or job.id) or nil }
  end, { status = 200, body = '{"host":"web-07","job":"42","isolated":true,"status":"isolated"}' },
  "Isolate " .. opts.host .. " through the EDR")
end

return M
