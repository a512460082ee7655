-- account: disable a user account and revoke its sessions over a SCIM 2.0
-- style HTTP API (RFC 7644).
--
--   account.disable { id=, url=, user=, auth_secret=, revoke_sessions=true }
--       PATCH {url}/Users/{user} with a PatchOp setting active=false, then
--       (revoke_sessions) DELETE {url}/Users/{user}/sessions, then GET
--       {url}/Users/{user} and checks active == false.
--   account.revoke_sessions { id=, url=, user=, auth_secret= }
--   account.enable { id=, url=, user=, auth_secret= }   the way back (recovery)
-- `user` is the SCIM resource id (a template such as "{{user_id}}" is fine).
-- `auth_secret` names a secret whose value is the whole Authorization header.
local kit = require "irpkit"

local M = {}

local PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

local spec = {
  id = { type = "string", required = true },
  url = { type = "string", required = true, check = kit.url_check },
  user = { type = "string", required = true },
  auth_secret = { type = "string" },
  revoke_sessions = { type = "boolean" },
}

local function set_active(ctx, opts, base, user, active)
  local body = { schemas = { PATCH_SCHEMA },
                 Operations = { { op = "replace", path = "active", value = active } } }
  return kit.http(ctx, opts, "PATCH", kit.url(base, "Users", user), body)
end

local function revoke(ctx, opts, base, user)
  -- 404: the API has no session endpoint; recorded, not fatal
  local _, r = kit.http(ctx, opts, "DELETE", kit.url(base, "Users", user, "sessions"), nil,
                        { 200, 202, 204, 404 })
  return r.status ~= 404, r.status
end

local DRILL = { status = 200, body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
                 .. '"id":"2819c223","userName":"bjensen","active":false}' }

function M.disable(opts)
  kit.check(opts, spec, "account.disable")
  return kit.step(opts.id, opts, function(ctx)
    local base, user = kit.render_url(ctx, "url", opts.url), kit.render(ctx, opts.user)
    set_active(ctx, opts, base, user, false)
    local revoked, code = nil, nil
    if opts.revoke_sessions ~= false then revoked, code = revoke(ctx, opts, base, user) end
    local u = kit.http(ctx, opts, "GET", kit.url(base, "Users", user))
    if type(u) ~= "table" or u.active ~= false then
      ctx.fail("the directory still reports " .. user .. " active")
    end
    return { user = user, user_name = u.userName, active = false, sessions_revoked = revoked,
             sessions_status = code }
  end, DRILL, "Disable account " .. opts.user)
end

function M.revoke_sessions(opts)
  kit.check(opts, spec, "account.revoke_sessions")
  return kit.step(opts.id, opts, function(ctx)
    local revoked, code = revoke(ctx, opts, kit.render_url(ctx, "url", opts.url), kit.render(ctx, opts.user))
    if not revoked then ctx.fail("the API has no session endpoint (404): revoke the sessions by hand") end
    return { user = kit.render(ctx, opts.user), sessions_revoked = true, status = code }
  end, { status = 204, body = "" }, "Revoke the sessions of " .. opts.user)
end

function M.enable(opts)
  kit.check(opts, spec, "account.enable")
  return kit.step(opts.id, opts, function(ctx)
    local base, user = kit.render_url(ctx, "url", opts.url), kit.render(ctx, opts.user)
    set_active(ctx, opts, base, user, true)
    return { user = user, active = true }
  end, { status = 200, body = '{"id":"2819c223","active":true}' }, "Re-enable account " .. opts.user)
end

return M
