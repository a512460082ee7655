-- evidence: collect command output and files as artifacts (SHA-256 in the
-- journal: artifact.stored), with a custody record per item (step.log:
-- what, from where, when, by which command, both hashes).
--
--   evidence.commands { id=, host=, commands = { { name = "ps.txt", argv = { "ps", "auxww" } }, ... } }
--       runs each command (locally, or on host over ssh) and stores its
--       stdout (and stderr, when not empty, as NAME.stderr).
--   evidence.files { id=, host=, files = { "/var/log/auth.log", ... }, encoding = "text"|"base64" }
--       reads each file with `sha256sum <` and `cat` (or `base64 -w0`) in one
--       command, so the source-side hash and the content come from the same
--       read. text: the stored artifact must hash to the source's SHA-256
--       (else the step fails: binary data or a file over 1 MiB does not
--       survive as text; use base64). base64: stored as NAME.b64; the
--       source hash is recorded for verification after decoding.
-- Failures of single items are recorded and fail the step at the end
-- (set allow_missing = true to only record them).
local kit = require "irpkit"

local M = {}

local MARK = "----irp-evidence----"

local function base_name(path)
  return (path:match("([^/]+)$") or "file"):gsub("[^%w%._%-]", "_")
end

local function custody(ctx, what, fields)
  fields.collected_at = kit.now()
  fields.run = ctx.run_id
  fields.step = ctx.step
  ctx.log("evidence: " .. what, fields)
end

local host_spec = { type = "string",
                    check = function(h) return h == "local" or kit.host_ok(h), "not a host name: " .. h end }

function M.commands(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    host = host_spec,
    commands = { type = "table", required = true, check = function(list)
      if #list == 0 then return false, "must list at least one { name =, argv = { ... } }" end
      for i, c in ipairs(list) do
        if type(c) ~= "table" or type(c.name) ~= "string" or type(c.argv) ~= "table" or #c.argv == 0 then
          return false, "item " .. i .. " must be { name = \"file.txt\", argv = { \"cmd\", ... } }"
        end
      end
      return true
    end },
    sudo = { type = "boolean" }, run_as = { type = "string" }, ssh_options = { type = "list" },
    allow_missing = { type = "boolean" },
  }, "evidence.commands")
  return kit.step(opts.id, opts, function(ctx)
    local items, bad = {}, {}
    local source = opts.host and kit.render(ctx, opts.host) or "local"
    for _, c in ipairs(opts.commands) do
      local argv = kit.render_list(ctx, c.argv)
      local r, cmd = kit.exec(ctx, opts, argv, { check = false, timeout = c.timeout or "2m" })
      local a = ctx.artifact(c.name, r.stdout)
      local item = { name = c.name, sha256 = a.sha256, path = a.path, code = r.code,
                     truncated = r.stdout_truncated or nil }
      if r.stderr ~= "" then item.stderr_sha256 = ctx.artifact(c.name .. ".stderr", r.stderr).sha256 end
      custody(ctx, c.name, { source = source, argv = cmd, code = r.code, sha256 = a.sha256,
                             path = a.path, truncated = r.stdout_truncated })
      if r.code ~= 0 or r.stdout_truncated then bad[#bad + 1] = c.name .. " (exit " .. r.code .. ")" end
      items[#items + 1] = item
    end
    if #bad > 0 and not opts.allow_missing then
      ctx.fail("evidence incomplete: " .. table.concat(bad, ", ") .. " (what was read is stored)")
    end
    return { source = source, items = items }
  end, { stdout = "USER  PID %CPU %MEM COMMAND\nroot    1  0.0  0.1 /sbin/init\n"
                  .. "www    812  97.5  3.2 /tmp/.x/kworker -c pool.example:443\n" },
  "Collect command output" .. (opts.host and " on " .. opts.host or ""))
end

function M.files(opts)
  kit.check(opts, {
    id = { type = "string", required = true },
    host = host_spec,
    files = { type = "list", required = true, check = function(l)
      if #l == 0 then return false, "must list at least one file" end
      for _, f in ipairs(l) do
        if not kit.is_template(f) and f:sub(1, 1) ~= "/" then return false, "'" .. f .. "' is not an absolute path" end
      end
      return true
    end },
    encoding = { type = "string", enum = { "text", "base64" }, literal = true },
    sudo = { type = "boolean" }, run_as = { type = "string" }, ssh_options = { type = "list" },
    allow_missing = { type = "boolean" },
  }, "evidence.files")
  local b64 = opts.encoding == "base64"
  -- the hash of stdin: `sha256sum -- FILE` escapes a name holding a backslash
  -- or a newline (a\b gives "\HASH  a\\b"), which the pattern below would not read
  local script = 'sha256sum < "$1" && echo ' .. MARK .. ' && ' .. (b64 and 'base64 -w0 -- "$1"' or 'cat -- "$1"')
  return kit.step(opts.id, opts, function(ctx)
    local items, bad = {}, {}
    local source = opts.host and kit.render(ctx, opts.host) or "local"
    for _, f in ipairs(kit.render_list(ctx, opts.files)) do
      local r, cmd = kit.exec(ctx, opts, { "sh", "-c", script, "irp-evidence", f }, { check = false, timeout = "5m" })
      local src_hash, content = r.stdout:match("^(%x+)%s+[^\n]*\n" .. MARK:gsub("%-", "%%-") .. "\n(.*)$")
      if r.code ~= 0 or not src_hash then
        bad[#bad + 1] = f .. ": " .. ((r.stderr:match("[^\n]+") or ("exit " .. r.code)))
        custody(ctx, f .. " NOT collected", { source = source, argv = cmd, code = r.code, stderr = r.stderr:sub(1, 500) })
      else
        local name = base_name(f) .. (b64 and ".b64" or "")
        local a = ctx.artifact(name, content)
        local verbatim = b64 or r.simulated or a.sha256 == src_hash:lower()
        custody(ctx, f, { source = source, file = f, argv = cmd, source_sha256 = src_hash:lower(),
                          sha256 = a.sha256, path = a.path, encoding = b64 and "base64" or "text",
                          truncated = r.stdout_truncated })
        items[#items + 1] = { file = f, name = name, source_sha256 = src_hash:lower(), sha256 = a.sha256,
                              path = a.path, encoding = b64 and "base64" or "text" }
        if r.stdout_truncated then
          bad[#bad + 1] = f .. ": larger than the 1 MiB an exec can return"
        elseif not verbatim then
          bad[#bad + 1] = f .. ": stored copy differs from the source (binary? use encoding = \"base64\")"
        end
      end
    end
    if #bad > 0 and not opts.allow_missing then ctx.fail("evidence incomplete: " .. table.concat(bad, "; ")) end
    return { source = source, items = items }
  end, { stdout = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  /var/log/auth.log\n"
                  .. MARK .. "\nNov 25 03:12:01 web-07 sshd[812]: Accepted publickey for deploy from 203.0.113.7\n" },
  "Collect files" .. (opts.host and " from " .. opts.host or ""))
end

return M
