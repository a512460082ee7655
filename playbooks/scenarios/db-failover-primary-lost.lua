-- playbooks/scenarios/db-failover-primary-lost.lua: disaster-recovery
-- exercise for playbooks/db-failover.lua.
--
--   irp drill playbooks/db-failover.lua \
--       -v primary=pg-01.db.internal.example -v standby=pg-02.db.internal.example \
--       --scenario playbooks/scenarios/db-failover-primary-lost.lua
--
-- Tuesday 03:10. The hypervisor host of pg-01 lost both power supplies;
-- Patroni is in maintenance mode after last night's upgrade and did not
-- fail over by itself. PgBouncer refuses the first RECONNECT while it
-- drains; the incident commander keeps the old data directory untouched
-- for the DBA's forensic copy, so the rebuild waits for the day shift.

return scenario {
  title = "Primary lost at 03:10, Patroni paused",
  playbook = "../db-failover.lua", -- relative to this file: `irp drill --scenario` needs no playbook argument
  inputs = { primary = "pg-01.db.internal.example", standby = "pg-02.db.internal.example" },
  narrative = [[
Tuesday 03:10. Checkout errors spike: "could not connect to server". The monitoring shows
pg-01 down since 03:08; the data centre reports a power failure on its hypervisor host.
Patroni was left in maintenance mode after last night's minor upgrade, so no automatic
failover happened. The DBA on call is on the bridge; the application owner is asleep.]],
  participants = {
    { name = "Rui", role = "DBA on call (operator)" },
    { name = "Dana", role = "incident-commander" },
    { name = "Mo", role = "application owner (joins later)" },
    { name = "Facilitator", role = "reads the injects, keeps time" },
  },
  speed = 60,

  injects = {
    { on = "step_start", step = "decide",
      text = "Data centre: the hypervisor host needs a new power distribution board; "
        .. "estimated repair four hours." },
    { on = "step_end", step = "reconnect-pooler",
      text = "PgBouncer refused the first RECONNECT while it drained client connections; "
        .. "the retry went through." },
    { on = "step_start", step = "preserve-old-data",
      text = "Mo (application owner) joins: the last 40 seconds of orders before 03:08 may "
        .. "exist only on pg-01. Keep its disk exactly as it is?" },
    { at = "T+20m", text = "The CFO asks in the incident channel when checkout will be back." },
  },

  answers = {
    ["decide"] = "done: pg-01 down for at least 4h (power); Dana accepts up to 40s of lost commits",
    ["fence-by-hand"] = "done: pg-01 VM powered off in vCenter and marked do-not-start",
    ["promote-patroni"] = "approve: Dana",
    ["app-health"] = "done: checkout and order history work; error rate back to normal",
    ["fresh-backup"] = "done: pgbackrest full backup of pg-02 started 03:31",
    ["bring-back-safely"] = "done: pg-01 booted with PostgreSQL and Patroni disabled",
    ["preserve-old-data"] = "deny: Dana - keep pg-01's disk untouched until the DBA's forensic copy",
    ["review"] = "done: review Thursday; action: alert when Patroni stays paused",
  },

  outcomes = {
    ["reconnect-pooler"] = {
      { code = 1, stderr = "ERROR:  pgbouncer cannot connect to server (draining)\n" },
      { code = 0, stdout = "RECONNECT\n" },
    },
  },

  expect = {
    status = "succeeded",
    decisions = {
      ["decide"] = "done",
      ["promote-patroni"] = "approve",
      ["preserve-old-data"] = "deny",
    },
    escalations = { 1 },
    skipped = { "fence-primary", "promote-pg-ctl", "promote-by-hand", "follow-new-primary",
      "preserve-old-data", "rebuild-patroni", "rebuild-basebackup", "wait-streaming", "rebuild-by-hand" },
  },
}
