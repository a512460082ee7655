-- playbooks/scenarios/phishing-payroll-lure.lua: tabletop exercise for
-- playbooks/phishing.lua.
--
--   irp drill playbooks/phishing.lua \
--       -v 'message_id=<20261125.4411@micros0ft-support.net>' -v reporter=alice \
--       --scenario playbooks/scenarios/phishing-payroll-lure.lua
--
-- Monday 08:55, payroll week. A "your salary statement is ready" message
-- from a look-alike domain reached four mailboxes; two people opened the
-- link before Alice reported it. The mail server is busy with the morning
-- rush: the first purge fails on a mailbox lock and succeeds on retry.
-- The registrar suspends the site before the takedown request is sent.

return scenario {
  title = "Payroll-week phishing: salary statement lure",
  playbook = "../phishing.lua", -- relative to this file: `irp drill --scenario` needs no playbook argument
  inputs = { message_id = "<20261125.4411@micros0ft-support.net>", reporter = "alice" },
  narrative = [[
Monday 08:55. Alice (finance) forwards a message "Your November salary statement is ready"
from hr-notices@micros0ft-support.net to the security mailbox. It links to a copy of the
company sign-in page. The message went to four people; the proxy log will tell who clicked.]],
  participants = {
    { name = "Kim", role = "SOC analyst (operator)" },
    { name = "Priya", role = "incident-commander" },
    { name = "Lee", role = "mail administrator" },
    { name = "Facilitator", role = "reads the injects, keeps time" },
  },
  speed = 60,

  injects = {
    { on = "step_start", step = "confirm-phishing",
      text = "Bob calls the service desk: he 'entered his password but the page just reloaded'." },
    { on = "step_end", step = "purge-message",
      text = "Lee: the first expunge hit a mailbox lock during the morning backup window; "
        .. "the retry went through." },
    { on = "step_start", step = "lock-accounts",
      text = "Bob is the payroll approver and runs the salary batch at 11:00. Lock him anyway?" },
    { at = "T+2h", text = "A second wave from a different look-alike domain reaches sales." },
  },

  answers = {
    ["confirm-phishing"] = "done: credential-harvesting copy of our sign-in page; sender and domain are right",
    ["purge-message"] = "approve: Priya",
    ["review-clicks"] = "done: alice and bob opened the link; bob entered his password",
    ["lock-accounts"] = "approve: Priya - payroll batch moves to the deputy approver",
    ["reset-credentials"] = "done: passwords reset, MFA re-enrolled, sessions revoked",
    ["request-takedown"] = "skip: the registrar suspended the domain at 09:40 on its own",
    ["close-the-loop"] = "done: thanked Alice; recipients told what to do",
    ["review"] = "done: review Thursday; action: tag external look-alike domains",
  },

  outcomes = {
    -- Expunge fails on a mailbox lock, then expunge and the check both succeed.
    ["purge-message"] = {
      { code = 75, stderr = "doveadm(bob): Error: Mailbox INBOX: Timed out after 30 seconds waiting for lock\n" },
      { code = 0, stdout = "" },
    },
  },

  expect = {
    status = "succeeded",
    decisions = {
      ["purge-message"] = "approve",
      ["lock-accounts"] = "approve",
      ["request-takedown"] = "skip",
    },
    escalations = { 1 },
    skipped = { "block-by-hand", "purge-variants", "request-takedown" },
  },
}
