/*
 * cli_help.c — the text of every command's --help, written to be read by a
 * responder under stress: what it does, the common invocation first, every
 * option, what the exit code means.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char *const general =
    "irp - run incident-response and disaster-recovery playbooks\n"
    "\n"
    "During an incident:\n"
    "  irp run PLAYBOOK -v KEY=VALUE ...    run it for real, step by step\n"
    "  irp drill PLAYBOOK ...               the same, every side effect simulated\n"
    "Before one:\n"
    "  irp check PLAYBOOK... [--drill]      find every problem in a playbook (and its drill)\n"
    "  irp test [DIR|SCENARIO]...           drill every scenario unattended: PASS / FAIL\n"
    "  irp list [DIR]                       the playbooks in DIR (default playbooks/)\n"
    "  irp show PLAYBOOK                    its inputs, phases, steps and escalation\n"
    "After a crash or Ctrl-C:\n"
    "  irp resume RUN_ID                    carry on; finished steps never run again\n"
    "The record:\n"
    "  irp status [RUN_ID]                  where each run stands\n"
    "  irp log RUN_ID [--follow] [--json]   a run's timeline\n"
    "  irp verify RUN_ID|JOURNAL_FILE       check a run's journal is intact\n"
    "  irp report RUN_ID [--format html]    the report: metrics, approvals, evidence\n"
    "Notifications:\n"
    "  irp outbox [list|flush]              what is still undelivered; send it now\n"
    "  irp notify test NAME                 send a test through notifier NAME\n"
    "  irp version\n"
    "\n"
    "`irp COMMAND --help` explains a command. Runs are kept in ./.irp (or --state-dir,\n"
    "or $IRP_STATE_DIR): .irp/runs/RUN_ID/journal.jsonl is the record of a run.\n"
    "Exit codes: 0 done, 1 run failed, 64 usage, 65 bad playbook or input, 69 service\n"
    "unavailable, 70 internal error, 74 I/O error on the record, 75 interrupted\n"
    "(resumable), 130 stopped by Ctrl-C.\n";

static const char *const run_help =
    "usage: irp run PLAYBOOK [-v KEY=VALUE]... [options]\n"
    "\n"
    "Runs PLAYBOOK for real: automated steps execute their commands, manual steps wait\n"
    "for you, approvals wait for the named role. Every action is journaled.\n"
    "\n"
    "  irp run playbooks/ransomware.lua -v host=web-07\n"
    "\n"
    "At a manual step answer:   done | failed | skip   (add \": a note\")\n"
    "At an approval answer:     approve | deny         (add \": who and why\")\n"
    "At any prompt:             note: TEXT   records an operator note\n"
    "\n"
    "Options:\n"
    "  -v, --var KEY=VALUE  an input of the playbook (repeatable)\n"
    "  --run-id ID          name the run (default: date-time-random)\n"
    "  --state-dir DIR      where runs are kept (default $IRP_STATE_DIR or ./.irp)\n"
    "  --config FILE        notifiers and the attach section (default $IRP_CONFIG,\n"
    "                       ./irp.conf.lua, else the built-in stdout notifier)\n"
    "  --yes                answer every manual step done and every approval granted\n"
    "                       (unattended; journaled as --yes)\n"
    "  --memory SIZE        memory cap for the playbook's Lua (default 256M)\n"
    "  --attach FILE        add local steps (repeatable; the configuration's attach\n"
    "                       section adds the files listed for this playbook's id)\n"
    "  --plugins DIR        search DIR for plugins (repeatable)\n"
    "\n"
    "Exit: 0 every step done, 1 the run failed, 65 the playbook or an input is wrong\n"
    "(nothing ran), 74 the journal could not be written, 75 interrupted or no answer\n"
    "(resumable), 130 Ctrl-C.\n";

static const char *const drill_help =
    "usage: irp drill PLAYBOOK [--scenario FILE] [--speed N] [run options]\n"
    "       irp drill --scenario FILE [options]   (the scenario names its playbook)\n"
    "\n"
    "A tabletop exercise: runs PLAYBOOK exactly as `irp run` would, but every side\n"
    "effect (commands, HTTP requests) is simulated from the steps' `drill` tables and\n"
    "journaled as simulated. Nothing touches production; notifications are marked\n"
    "[DRILL].\n"
    "\n"
    "  irp drill playbooks/ransomware.lua -v host=web-07\n"
    "  irp drill playbooks/ransomware.lua --yes -v host=web-07    (unattended)\n"
    "  irp drill playbooks/ransomware.lua -v host=web-07 \\\n"
    "      --scenario playbooks/scenarios/ransomware-friday-night.lua\n"
    "\n"
    "A scenario (a Lua file, `return scenario { ... }`, see playbooks/FORMAT.md) adds a\n"
    "narrative and players, injects shown at a drill time (at = \"T+20m\") or when a\n"
    "step starts or ends, scripted answers for manual steps, approvals and ctx.ask\n"
    "(so the drill runs unattended), simulated outcomes per step (\"fails twice, then\n"
    "succeeds\"), a clock speed, and expectations. Every drill ends with a scorecard\n"
    "(printed and journaled as drill.scorecard): time per phase on the drill clock\n"
    "against the objectives, decisions, escalation tiers, skipped and failed steps.\n"
    "\n"
    "Options: those of `irp run`, and\n"
    "  --scenario FILE      play this scenario (a bad file: file:line, exit 65)\n"
    "  --speed N            run the clock N times faster (sleeps, backoff, timeouts,\n"
    "                       escalation, injects); default: the scenario's speed,\n"
    "                       else 1. A step still gets up to 2 real seconds to compute.\n"
    "  --live-notify        send notifications to the configured channels for real,\n"
    "                       each marked [DRILL] (default: journaled, never sent)\n"
    "\n"
    "At any prompt: 'pause' stops the drill clock (injects, timers, escalation) until\n"
    "'resume'; 'note: text' records a facilitator's note.\n"
    "\n"
    "A prompt is answered by the scenario first, then by --yes, then by the operator;\n"
    "with none of these (input ended) the drill stops as \"no answer\" (exit 75),\n"
    "naming the step.\n"
    "\n"
    "Exit status: as `irp run`; with a scenario that has `expect`, 0 only when every\n"
    "expectation held, else 1 with each mismatch printed (a playbook test for CI).\n";

static const char *const check_help =
    "usage: irp check PLAYBOOK... [--attach FILE]... [--plugins DIR]... [--config FILE]\n"
    "       irp check PLAYBOOK --drill [--scenario FILE] [-v KEY=VALUE]... [--config FILE]\n"
    "\n"
    "Loads each playbook in the sandbox and reports every problem as\n"
    "FILE:LINE: what is wrong. Nothing runs. Required inputs need not be given.\n"
    "Local steps are merged as a run would: --attach files and the configuration's\n"
    "attach section (--config, $IRP_CONFIG or ./irp.conf.lua).\n"
    "\n"
    "--drill also drills each playbook once, quietly (every side effect simulated,\n"
    "prompts answered by the scenario or as --yes would, no waiting, nothing kept),\n"
    "and reports what a drill would trip on:\n"
    "  FILE:LINE: step \"b\" reads steps.a.result.host, which a drill does not\n"
    "  provide: step \"a\" (FILE:LINE) has no simulated outcome for its ctx.exec ...\n"
    "a step that fails with a Lua error in the drill, and (as notes) every ctx.exec\n"
    "or ctx.http without a `drill` table or a scenario outcome. Missing required\n"
    "inputs get placeholder values.\n"
    "\n"
    "Exit: 0 all valid, 65 a playbook (or, with --drill, its drill) has problems.\n";

static const char *const list_help =
    "usage: irp list [DIR]\n"
    "\n"
    "Lists the playbooks (*.lua) in DIR (default: playbooks/ if it exists, else the\n"
    "current directory) with their id, severity, number of steps and title.\n";

static const char *const show_help =
    "usage: irp show PLAYBOOK [--attach FILE]... [--plugins DIR]... [--config FILE]\n"
    "\n"
    "Prints a playbook's outline: inputs, objectives, escalation tiers, and every step\n"
    "by phase with its kind, approval, timeout, retries and on_failure. With --attach\n"
    "(or the configuration's attach section), the merged outline: attached steps are\n"
    "marked with the file they come from.\n";

static const char *const verify_help =
    "usage: irp verify RUN_ID|JOURNAL_FILE [--state-dir DIR]\n"
    "\n"
    "Walks a run's journal: every record whole, numbered without gaps, and chained by\n"
    "SHA-256 to the one before. Exit 0 when intact; 65 naming the first bad record.\n"
    "It prints the head (the last record's seq and SHA-256): copy it into the\n"
    "incident ticket, since no chain can show records cut off its end.\n";

static const char *const report_help =
    "usage: irp report RUN_ID|JOURNAL_FILE [--format md|html|json] [-o FILE] [--state-dir DIR]\n"
    "\n"
    "The report of a run, from its journal only (nothing is run): playbook and its\n"
    "SHA-256, live or DRILL, who started it, when, status; the hash-chain check;\n"
    "time to acknowledge / contain / resolve, phases, objectives met or breached;\n"
    "approvals and decisions with who, escalations, notifications, evidence with\n"
    "SHA-256 (chain of custody), the timeline, and a drill's scorecard.\n"
    "\n"
    "  irp report night-1                          Markdown on stdout\n"
    "  irp report night-1 --format html -o r.html  one page, no external files\n"
    "\n"
    "  --format md|html|json   md (default; plain text too), html, json (the model)\n"
    "  -o FILE                 write FILE (replaced, atomically) instead of stdout\n"
    "\n"
    "A run still going is reported as it stands. A journal that fails verification\n"
    "is reported anyway, with a warning naming the first bad record; what the chain\n"
    "cannot vouch for is marked unverified.\n"
    "Exit: 0 written; 65 written but the journal fails verification, or no such run\n"
    "(nothing written); 64 usage; 74 FILE could not be written.\n";

static const char *const resume_help =
    "usage: irp resume RUN_ID [--in-flight retry|skip|done] [--yes] [--force] [--config FILE]\n"
    "                 [--state-dir DIR]\n"
    "\n"
    "Continues a run that stopped (crash, kill, Ctrl-C, no answer) from its journal.\n"
    "Finished steps keep their recorded results and never run again. A step that had\n"
    "started but has no outcome is run again only if the playbook marks it\n"
    "idempotent; otherwise you are asked whether to retry it, mark it done or skip it.\n"
    "\n"
    "  irp resume 20261125-031244-7f3a\n"
    "  irp resume 20261125-031244-7f3a --in-flight done     (it did act: don't repeat)\n"
    "\n"
    "  --in-flight retry|skip|done  answer for the in-flight step (unattended)\n"
    "  --yes                        answer manual steps done and approvals granted\n"
    "  --force                      resume even though the playbook, an --attach file or\n"
    "                               a plugin it loads changed\n"
    "                               (refused otherwise: exit 65, naming what changed)\n"
    "  --config FILE                notify through FILE instead of the configuration the\n"
    "                               run started with\n"
    "\n"
    "Notifications go through the configuration the run started with (run.started\n"
    "records its absolute path), wherever the resume is started: not $IRP_CONFIG or\n"
    "./irp.conf.lua. When that file is gone or no longer loads, the resume is refused\n"
    "(exit 65, naming the file) unless --config names another. A changed file is used\n"
    "as it is now (a rotated webhook URL is a legitimate change); the resume says which\n"
    "configuration it uses.\n"
    "\n"
    "Exit codes as for irp run; 75 when the run is locked by another irp (its pid is\n"
    "named).\n";

static const char *const status_help =
    "usage: irp status [RUN_ID] [--state-dir DIR]\n"
    "\n"
    "Without RUN_ID: every run in the state directory, with its mode and state\n"
    "(running, succeeded, failed, interrupted, stopped; BROKEN when its journal fails\n"
    "irp verify). With RUN_ID: the last word on each step (IN FLIGHT marks a step that\n"
    "started and has no outcome) and how to continue it.\n";

static const char *const log_help =
    "usage: irp log RUN_ID [--follow] [--json] [--state-dir DIR]\n"
    "\n"
    "Prints a run's journal as a timeline: time, record number, event, step, detail.\n"
    "  --follow   keep printing new records until the run ends (like tail -f): it\n"
    "             finishes or is interrupted, or no irp runs it any more (killed)\n"
    "  --json     the raw JSON lines\n"
    "A journal that fails irp verify is still shown, with a warning on stderr.\n";

static const char *const test_help =
    "usage: irp test [SCENARIO | DIR]... [--plugins DIR]... [--attach FILE]...\n"
    "                [--config FILE] [--verbose]\n"
    "\n"
    "The playbook tests: drills each scenario's playbook unattended, in a throw-away\n"
    "state directory, and prints PASS or FAIL per scenario; a failure lists the\n"
    "scorecard's unmet expectations (or the end of the drill's output).\n"
    "\n"
    "  irp test                     every scenario in playbooks/scenarios/\n"
    "  irp test my-playbooks/       my-playbooks/scenarios/*.lua (or my-playbooks/*.lua)\n"
    "  irp test my-scenario.lua\n"
    "\n"
    "A scenario names what it drills, relative to its own file:\n"
    "  return scenario { playbook = \"../ransomware.lua\", inputs = { host = \"web-07\" },\n"
    "                    answers = { ... }, outcomes = { ... }, expect = { ... } }\n"
    "Nothing is typed in: a prompt the scenario does not answer ends that drill as\n"
    "\"no answer\" (a FAIL unless expected). A scenario without `expect` passes when\n"
    "its drill succeeds. --verbose shows the end of every drill's output.\n"
    "\n"
    "Exit: 0 every scenario passed, 1 one failed, 65 a scenario could not be read.\n";

static const char *const version_help = "usage: irp version\n\nPrints irp's version and its libraries'.\n";

void cli_help(const char *command)
{
    const char *text = general;
    if (!command)
        text = general;
    else if (!strcmp(command, "run"))
        text = run_help;
    else if (!strcmp(command, "drill"))
        text = drill_help;
    else if (!strcmp(command, "check"))
        text = check_help;
    else if (!strcmp(command, "list"))
        text = list_help;
    else if (!strcmp(command, "show"))
        text = show_help;
    else if (!strcmp(command, "status"))
        text = status_help;
    else if (!strcmp(command, "log"))
        text = log_help;
    else if (!strcmp(command, "resume"))
        text = resume_help;
    else if (!strcmp(command, "verify"))
        text = verify_help;
    else if (!strcmp(command, "report"))
        text = report_help;
    else if (!strcmp(command, "version"))
        text = version_help;
    else if (!strcmp(command, "test"))
        text = test_help;
    fputs(text, stdout);
}
