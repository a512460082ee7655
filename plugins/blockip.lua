-- blockip: block an IP address or range.
--
--   blockip.firewall { id=, addr=, host=, method="nftables"|"iptables", sudo= }
--       on host over ssh (host = "local": this machine). nftables: adds addr
--       to the interval sets of table inet irp_block (input, forward and
--       output drop rules, created on first use; overlapping ranges merge),
--       then `nft get element` verifies the set covers addr. iptables: DROP rules in INPUT, FORWARD (both ways), OUTPUT,
--       added only when missing, then read back.
--   blockip.api { id=, url=, addr=, auth_secret=, comment=, expires= }
--       POST {url} with {"address":..,"comment":..,"expires":..} (a firewall
--       or WAF's HTTP API); any 2xx is success.
-- addr: "203.0.113.7", "203.0.113.0/24", "2001:db8::/32" or a template; a /0
-- (every address) is refused, at load and again after the template is filled.
local kit = require "irpkit"

local M = {}

local function addr_check(a)
  if not kit.addr_ok(a) then
    return false, "'" .. a .. "' is not an IP address or range (e.g. 203.0.113.7 or 203.0.113.0/24)"
  end
  -- a /0 is every address: the block would cut off the responder too
  if tonumber(a:match("/(%d+)$") or "1") == 0 then
    return false, "'" .. a .. "' is every address (a /0): refusing to block it"
  end
  return true
end

local function nft_script(addr)
  local v6 = addr:find(":", 1, true) ~= nil
  local fam = v6 and "ip6" or "ip"
  return table.concat({
    "add table inet irp_block",
    "add set inet irp_block v4 { type ipv4_addr; flags interval; auto-merge; }",
    "add set inet irp_block v6 { type ipv6_addr; flags interval; auto-merge; }",
    "add chain inet irp_block input { type filter hook input priority -150; policy accept; }",
    "add chain inet irp_block forward { type filter hook forward priority -150; policy accept; }",
    "add chain inet irp_block output { type filter hook output priority -150; policy accept; }",
    "flush chain inet irp_block input",
    "flush chain inet irp_block forward",
    "flush chain inet irp_block output",
    "add rule inet irp_block input ip saddr @v4 drop",
    "add rule inet irp_block input ip6 saddr @v6 drop",
    "add rule inet irp_block forward ip saddr @v4 drop",
    "add rule inet irp_block forward ip daddr @v4 drop",
    "add rule inet irp_block forward ip6 saddr @v6 drop",
    "add rule inet irp_block forward ip6 daddr @v6 drop",
    "add rule inet irp_block output ip daddr @v4 drop",
    "add rule inet irp_block output ip6 daddr @v6 drop",
    "add element inet irp_block " .. (v6 and "v6" or "v4") .. " { " .. addr .. " }",
  }, "\n") .. "\n", fam
end

local IPT_SCRIPT = [[
set -e
a="$1"; ipt=iptables
case "$a" in *:*) ipt=ip6tables;; esac
$ipt -C INPUT -s "$a" -j DROP 2>/dev/null || $ipt -I INPUT 1 -s "$a" -j DROP
$ipt -C FORWARD -s "$a" -j DROP 2>/dev/null || $ipt -I FORWARD 1 -s "$a" -j DROP
$ipt -C FORWARD -d "$a" -j DROP 2>/dev/null || $ipt -I FORWARD 1 -d "$a" -j DROP
$ipt -C OUTPUT -d "$a" -j DROP 2>/dev/null || $ipt -I OUTPUT 1 -d "$a" -j DROP
$ipt -S INPUT
]]

function M.firewall(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    addr = { type = "string", required = true, check = addr_check },
    host = { type = "string", required = true,
             check = function(h) return h == "local" or kit.host_ok(h), "not a host name: " .. h end },
    method = { type = "string", enum = { "nftables", "iptables" }, literal = true },
    sudo = { type = "boolean" },
    ssh_options = { type = "list" },
  }, "blockip.firewall")
  local method = opts.method or "nftables"
  return kit.step(opts.id, opts, function(ctx)
    local addr = kit.render(ctx, opts.addr)
    local ok, why = addr_check(addr)
    if not ok then ctx.fail(why) end
    local r
    local ip = addr:match("^[^/]+")
    if method == "nftables" then
      local script = nft_script(addr)
      local set = addr:find(":", 1, true) and "v6" or "v4"
      -- `get element` exits non-zero unless the set now covers addr (an
      -- address inside a range already blocked is listed as that range)
      r = kit.exec(ctx, opts, { "sh", "-c", "nft -f - && nft get element inet irp_block " .. set
                                .. ' "{ $1 }"', "irp-block", addr }, { stdin = script, timeout = "60s" })
    else
      r = kit.exec(ctx, opts, { "sh", "-c", IPT_SCRIPT, "irp-block", addr }, { timeout = "60s" })
    end
    if method == "iptables" and not r.stdout:find(ip, 1, true) then
      -- a drill table is fixed text: it cannot list the address of this run
      if r.simulated then
        ctx.log("drill: the simulated listing does not show " .. addr .. " (not checked in a drill)")
      else
        ctx.fail("the firewall does not list " .. addr .. " after adding it: " .. r.stdout:sub(1, 200))
      end
    end
    return { addr = addr, method = method, host = kit.render(ctx, opts.host), blocked = true }
  end, method == "nftables" and {
    stdout = "table inet irp_block {\n\tset v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n"
          .. "\t\telements = { 203.0.113.7 }\n\t}\n}\n",
  } or {
    stdout = "-P INPUT ACCEPT\n-A INPUT -s 203.0.113.7/32 -j DROP\n-A INPUT -s 198.51.100.0/24 -j DROP\n"
          .. "-A INPUT -s 2001:db8::1/128 -j DROP\n",
  }, "Block " .. opts.addr .. " (" .. method .. ")")
end

function M.api(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    url = { type = "string", required = true, check = kit.url_check },
    addr = { type = "string", required = true, check = addr_check },
    auth_secret = { type = "string" },
    comment = { type = "string" },
    expires = { type = "string" },
  }, "blockip.api")
  return kit.step(opts.id, opts, function(ctx)
    local addr = kit.render(ctx, opts.addr)
    local ok, why = addr_check(addr)
    if not ok then ctx.fail(why) end
    local data = kit.http(ctx, opts, "POST", kit.render_url(ctx, "url", opts.url), {
      address = addr,
      comment = kit.render(ctx, opts.comment or ("irp run " .. tostring(ctx.run_id))),
      expires = opts.expires and kit.render(ctx, opts.expires) or nil,
    })
    return { addr = addr, blocked = true, rule = type(data) == "table" and (data.id or data.rule_id) or nil }
  end, { status = 201, body = '{"id":"rule-7731","address":"203.0.113.7","action":"deny"}' },
  "Block " .. opts.addr .. " at the firewall API")
end

return M
