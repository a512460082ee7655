-- playbooks/scenarios/ransomware-friday-night.lua: tabletop exercise for
-- playbooks/ransomware.lua.
--
--   irp drill playbooks/ransomware.lua -v host=web-07 \
--       --scenario playbooks/scenarios/ransomware-friday-night.lua
--
-- Friday, 23:40. The on-call engineer is paged by the EDR: web-07, the
-- customer portal's application server, is renaming files to *.lockbit.
-- The EDR's isolation API is overloaded (it times out twice before the
-- third attempt is accepted), the incident commander refuses to put the
-- host back on the network before the forensic report, and Legal joins
-- half an hour in. Runs unattended: every prompt has a scripted answer.

return scenario {
  title = "Friday night: LockBit on the customer portal",
  playbook = "../ransomware.lua", -- relative to this file: `irp drill --scenario` needs no playbook argument
  inputs = { host = "web-07" },
  narrative = [[
Friday 23:40 UTC. The EDR pages the on-call engineer: web-07 (customer portal,
application tier) shows 412 detections in four minutes, files renamed to
*.lockbit and a README-LOCKBIT.txt in /srv/app/data. The portal still answers.
Most of the team is off for the weekend; the incident commander joins by phone.]],
  participants = {
    { name = "Sam", role = "on-call engineer (operator)" },
    { name = "Priya", role = "incident-commander" },
    { name = "Jordan", role = "security analyst" },
    { name = "Alex", role = "legal counsel" },
    { name = "Facilitator", role = "reads the injects, keeps time" },
  },
  speed = 300, -- one exercise minute in 0.2 s: the whole night in about ten seconds

  injects = {
    { on = "step_start", step = "confirm",
      text = "The service desk forwards a customer screenshot: the portal shows a ransom note "
        .. "instead of the invoice page." },
    { on = "step_start", step = "isolate-edr",
      text = "The EDR vendor's status page: 'degraded API performance in EU-1'. "
        .. "Isolation requests may time out." },
    { on = "step_end", step = "verify-isolation",
      text = "Jordan: the same hash was seen on web-08 two hours ago, quarantined, never escalated. "
        .. "Is web-08 in scope?" },
    { at = "T+20m", text = "A journalist e-mails the press office asking whether customer data was stolen." },
    { on = "step_start", step = "notify-legal",
      text = "Alex (legal) joins the bridge: the 72-hour GDPR clock may already be running." },
  },

  answers = {
    -- `after`: how long the players take to answer, on the drill clock (the
    -- objectives, the 15-minute escalation tier and the T+20m inject depend on it).
    ["confirm"] = { manual = "done: ransom note README-LOCKBIT.txt in /srv/app/data, mass renames to *.lockbit (EDR console)",
                    after = "4m" },
    -- Priya takes 3 minutes to pick up: the approval's 2-minute timeout pages SecOps (tier 2).
    ["isolate-edr"] = { approval = "approve: Priya, by phone at 23:52", after = "3m" },
    ["protect-backups"] = { manual = "done: restic repo on backup-01 set append-only, retention jobs paused", after = "5m" },
    ["contain-others"] = { manual = "done: web-08 isolated by Jordan via the EDR console", after = "6m" },
    ["notify-legal"] = { manual = "done: Alex informed 00:21; DPO on standby", after = "8m" },
    ["root-cause"] = "done: exposed admin panel, reused VPN password (initial access 22:58)",
    ["rotate-credentials"] = "done: service and admin credentials rotated, sessions revoked",
    ["rebuild"] = "done: web-07 rebuilt from golden image 2026.11",
    ["validate-data"] = "done: validated by the portal owner; data-loss window 21h41m",
    ["release-isolation"] = "deny: Priya - not before the forensic report on Monday",
    ["watch"] = "done: SOC watches web-07 and web-08 until Thursday",
    ["review"] = "done: review Wednesday 10:00, owner Priya",
  },

  outcomes = {
    -- The EDR API times out twice; the third request is accepted.
    ["isolate-edr"] = {
      { code = 1, stderr = "edr: request timed out after 60s (EU-1 degraded)\n" },
      { code = 1, stderr = "edr: request timed out after 60s (EU-1 degraded)\n" },
      { code = 0, stdout = "isolation job 42 queued\n" },
    },
  },

  expect = {
    status = "succeeded",
    decisions = {
      ["isolate-edr"] = "approve",
      ["release-isolation"] = "deny",
      ["confirm"] = "done",
    },
    escalations = { 1, 2 },  -- tier 2: the approval waited past its timeout; contained within 30m, no tier 3
    skipped = { "isolate-firewall", "isolate-by-hand", "release-isolation", "post-release-check" },
  },
}
