-- statuspage: public status page and stakeholder updates.
--
--   statuspage.update { id=, url=, auth_secret=, name=, status=, message=, components={...},
--                       incident = "{{steps.ID.result.incident}}" }
--       without incident: POST {url}/incidents {"name","status","body","components"}
--       with incident:    PATCH {url}/incidents/{incident} {"status","body"}
--       status: investigating | identified | monitoring | resolved.
--   statuspage.stakeholders { id=, message=, webhooks = { "https://..." }, notifiers = { "exec-team" },
--                             auth_secret= }
--       POSTs {"text": message} to each webhook and/or sends the message
--       through irp's configured notifiers (ctx.notify, which works live).
local kit = require "irpkit"

local M = {}

local STATUSES = { "investigating", "identified", "monitoring", "resolved" }

function M.update(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    url = { type = "string", required = true, check = kit.url_check },
    auth_secret = { type = "string" },
    name = { type = "string" },
    status = { type = "string", required = true, enum = STATUSES },
    message = { type = "string", required = true },
    components = { type = "list" },
    incident = { type = "string" },
  }, "statuspage.update")
  if opts.incident == nil and opts.name == nil then
    error("statuspage.update: a new incident needs a name (or pass incident = ... to update one)", 2)
  end
  return kit.step(opts.id, opts, function(ctx)
    local base = kit.render_url(ctx, "url", opts.url)
    local status = kit.render(ctx, opts.status)
    local known = false
    for _, v in ipairs(STATUSES) do known = known or v == status end
    if not known then
      ctx.fail("status: '" .. status .. "'" .. (status ~= opts.status and " (from '" .. opts.status .. "')" or "")
               .. " must be one of " .. table.concat(STATUSES, ", "))
    end
    local body = { status = status, body = kit.render(ctx, opts.message) }
    local data
    if opts.incident then
      local inc = kit.render(ctx, opts.incident)
      data = kit.http(ctx, opts, "PATCH", kit.url(base, "incidents", inc), body)
    else
      body.name = kit.render(ctx, opts.name)
      body.components = kit.render_list(ctx, opts.components)
      data = kit.http(ctx, opts, "POST", kit.url(base, "incidents"), body)
    end
    local inc = type(data) == "table" and (data.id or data.incident_id) or opts.incident
    return { incident = inc and tostring(inc) or nil, status = body.status,
             shortlink = type(data) == "table" and data.shortlink or nil }
  end, { status = 201, body = '{"id":"p31zjtct2jer","status":"investigating","shortlink":"https://stspg.io/p31zjtct2jer"}' },
  "Status page: " .. opts.status)
end

function M.stakeholders(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    message = { type = "string", required = true },
    webhooks = { type = "list", check = function(l)
      for _, w in ipairs(l) do
        if not kit.is_template(w) and not kit.url_ok(w) then return kit.url_check(w) end
      end
      return true
    end },
    notifiers = { type = "list" },
    auth_secret = { type = "string" },
  }, "statuspage.stakeholders")
  if #(opts.webhooks or {}) + #(opts.notifiers or {}) == 0 then
    error("statuspage.stakeholders: list webhooks = { ... } or notifiers = { ... } (or both)", 2)
  end
  return kit.step(opts.id, opts, function(ctx)
    local msg = kit.render(ctx, opts.message)
    local sent = {}
    for _, n in ipairs(opts.notifiers or {}) do
      ctx.notify(n, msg)
      sent[#sent + 1] = n
    end
    for _, w in ipairs(opts.webhooks or {}) do
      local url = kit.render_url(ctx, "webhooks", w)
      kit.http(ctx, opts, "POST", url, { text = msg })
      sent[#sent + 1] = url
    end
    return { sent = sent }
  end, { status = 200, body = "ok" }, "Tell the stakeholders")
end

return M
