/*
 * cli.h — the command line: parses `irp COMMAND ...`, prints each command's
 * --help, and dispatches to the engine and the journal. Exit codes are
 * DESIGN.md's (util.h).
 * Depends on: engine.h, journal.h.
 */
#ifndef IRP_CLI_H
#define IRP_CLI_H

int cli_main(int argc, char **argv);

/* Commands that read playbooks without running them (cli_info.c). */
int cli_check(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_show(int argc, char **argv);
/* The playbook tests: every scenario drilled unattended (cli_test.c). */
int cli_test(int argc, char **argv);
/* Commands that read the record (cli_record.c). */
int cli_verify(int argc, char **argv);
/* Where runs stand, and a run's timeline (cli_runs.c). */
int cli_status(int argc, char **argv);
int cli_log(int argc, char **argv);

/* The run's report: Markdown, HTML or JSON (cli_report.c). */
int cli_report(int argc, char **argv);
/* A RUN_ID under the state dir (option, $IRP_STATE_DIR, ./.irp), or a path
 * to a journal file (an argument with a '/', or an existing file). malloc'd. */
char *cli_journal_path(const char *arg, const char *state_dir);
/* The pid holding a run's lock (-1: held, pid unknown), or 0 when no
 * process holds it. Never takes it. */
long cli_lock_holder(const char *run_dir);

/* 1 when arg is -h or --help. */
int cli_is_help(const char *arg);
/* Prints the help of a command ("run", "drill", ...) to stdout. */
void cli_help(const char *command);
/* Parses "256M", "1G", "1048576" into bytes; -1 when invalid. */
long long cli_parse_size(const char *text);

#endif
