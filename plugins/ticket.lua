-- ticket: open and update an incident ticket over a generic JSON HTTP API.
--
--   ticket.create { id=, url=, auth_secret=, summary=, description=, severity=, fields = { ... },
--                   id_field = "id" }
--       POST {url} with {"title": summary, "description", "severity", ...fields}; the
--       answer's id_field (default "id", then "key", "number") is the ticket.
--       Result: { ticket = "INC-1042", url = ..., status = ... }.
--   ticket.update { id=, url=, auth_secret=, ticket=, comment=, status= }
--       POST {url}/{ticket}/comments {"body": comment}; with status, also
--       PATCH {url}/{ticket} {"status": status}. ticket is usually
--       "{{steps.open-ticket.result.ticket}}".
-- Text options take {{templates}} (inputs, earlier results).
local kit = require "irpkit"

local M = {}

function M.create(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    url = { type = "string", required = true, check = kit.url_check },
    auth_secret = { type = "string" },
    summary = { type = "string", required = true },
    description = { type = "string" },
    severity = { type = "string" },
    fields = { type = "table" },
    id_field = { type = "string" },
  }, "ticket.create")
  return kit.step(opts.id, opts, function(ctx)
    local body = {}
    for k, v in pairs(opts.fields or {}) do body[k] = kit.render(ctx, v) end
    body.title = kit.render(ctx, opts.summary)
    body.description = opts.description and kit.render(ctx, opts.description) or nil
    body.severity = opts.severity and kit.render(ctx, opts.severity) or nil
    local data = kit.http(ctx, opts, "POST", kit.render_url(ctx, "url", opts.url), body)
    if type(data) ~= "table" then ctx.fail("the ticket API answered without a JSON object") end
    local t = data[opts.id_field or "id"] or data.key or data.number
    if t == nil then ctx.fail("the ticket API's answer has no '" .. (opts.id_field or "id") .. "' field") end
    return { ticket = tostring(t), url = data.url or data.html_url or data.self, status = data.status }
  end, { status = 201, body = '{"id":"INC-1042","url":"https://tickets.example/INC-1042","status":"open"}' },
  "Open ticket: " .. opts.summary)
end

function M.update(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    url = { type = "string", required = true, check = kit.url_check },
    auth_secret = { type = "string" },
    ticket = { type = "string", required = true },
    comment = { type = "string" },
    status = { type = "string" },
  }, "ticket.update")
  if opts.comment == nil and opts.status == nil then
    error("ticket.update: give a comment, a status, or both", 2)
  end
  return kit.step(opts.id, opts, function(ctx)
    local base, t = kit.render_url(ctx, "url", opts.url), kit.render(ctx, opts.ticket)
    if t == "" then ctx.fail("no ticket to update") end
    local out = { ticket = t }
    if opts.comment then
      kit.http(ctx, opts, "POST", kit.url(base, t, "comments"), { body = kit.render(ctx, opts.comment) })
      out.commented = true
    end
    if opts.status then
      local data = kit.http(ctx, opts, "PATCH", kit.url(base, t), { status = kit.render(ctx, opts.status) })
      out.status = type(data) == "table" and data.status or kit.render(ctx, opts.status)
    end
    return out
  end, { status = 200, body = '{"id":"INC-1042","status":"resolved"}' }, "Update ticket " .. opts.ticket)
end

return M
