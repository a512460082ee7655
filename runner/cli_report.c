/*
 * cli_report.c — `irp report RUN_ID|JOURNAL_FILE [--format md|html|json]
 * [-o FILE] [--state-dir DIR]`: finds the journal as `irp verify` does,
 * builds the report model (report.c) and writes one rendering to stdout or,
 * atomically (a temporary file in the same directory, then rename), to
 * FILE, replacing it. Only reads the run: a run still going (locked by
 * another irp) is reported as it stands.
 * Exit: 0 written; 65 written, but the journal fails verification (or no
 * journal to report: nothing written); 64 usage; 74 FILE not written.
 * Depends on: cli.h, report.h, state.h, proto.h (pr_str), util.h.
 */
#include "cli.h"
#include "proto.h"
#include "report.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes text to path through a temporary file beside it and a rename, so
 * a reader never sees half a report. 0, or -1 with *what failed. */
static int write_atomic(const char *path, const char *text, const char **what)
{
    char *copy = ut_xstrdup(path);
    char *tmp = ut_xasprintf("%s/.%s.tmp.XXXXXX", dirname(copy), strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    free(copy);
    int fd = mkstemp(tmp); /* mode 0600: a report names hosts, people and evidence */
    int rc = -1;
    *what = "create";
    if (fd >= 0) {
        *what = "write";
        if (ut_write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0) {
            *what = "close";
            if (close(fd) == 0) {
                fd = -1;
                *what = "rename";
                rc = rename(tmp, path);
            }
        }
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            unlink(tmp);
        errno = e;
    }
    free(tmp);
    return rc;
}

/* 1 when a and b name the same existing file. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

int cli_report(int argc, char **argv)
{
    const char *target = NULL, *state_dir = NULL, *format = "md", *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("report");
            return 0;
        }
        if (!strncmp(argv[i], "--state-dir", 11) && (argv[i][11] == '\0' || argv[i][11] == '=')) {
            state_dir = option_value(argc, argv, &i, "--state-dir");
        } else if (!strncmp(argv[i], "--format", 8) && (argv[i][8] == '\0' || argv[i][8] == '=')) {
            format = option_value(argc, argv, &i, "--format");
        } else if (!strcmp(argv[i], "-o") || (!strncmp(argv[i], "--output", 8) && (argv[i][8] == '\0' || argv[i][8] == '='))) {
            out = option_value(argc, argv, &i, argv[i][1] == 'o' ? "-o" : "--output");
            if (!out || !*out) {
                fprintf(stderr, "irp report: -o needs a file name (irp report --help)\n");
                return IRP_EXIT_USAGE;
            }
        } else if (argv[i][0] == '-' || target) {
            fprintf(stderr, "irp report: unexpected '%s' (irp report --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        } else {
            target = argv[i];
        }
    }
    if (!format || (strcmp(format, "md") && strcmp(format, "html") && strcmp(format, "json"))) {
        fprintf(stderr, "irp report: --format is md, html or json, not '%s'\n", format ? format : "");
        return IRP_EXIT_USAGE;
    }
    if (!target || !*target) {
        fprintf(stderr, "irp report: which run? (irp status lists them)\n");
        return IRP_EXIT_USAGE;
    }
    char *path = cli_journal_path(target, state_dir);
    if (out && same_file(out, path)) {
        fprintf(stderr, "irp report: -o %s is the journal itself: refusing to overwrite the record\n", out);
        free(path);
        return IRP_EXIT_USAGE;
    }
    char *copy = ut_xstrdup(path);
    long holder = cli_lock_holder(dirname(copy));
    free(copy);
    char err[512];
    json_t *model = rp_load(path, holder, err, sizeof err);
    if (!model) {
        struct stat st;
        if (stat(path, &st) != 0 && errno == ENOENT && !strchr(target, '/'))
            fprintf(stderr, "irp report: no run '%s' in %s (irp status lists them)\n", target, st_state_dir(state_dir));
        else
            fprintf(stderr, "irp report: %s\n", err);
        free(path);
        return IRP_EXIT_DATAERR;
    }
    int to_tty = !out && isatty(STDOUT_FILENO);
    char *text = !strcmp(format, "html") ? rp_render_html(model)
                 : !strcmp(format, "json") ? rp_render_json(model, to_tty)
                                           : rp_render_md(model);
    json_t *in = json_object_get(model, "integrity");
    int broken = !json_is_true(json_object_get(in, "intact"));
    int rc = broken ? IRP_EXIT_DATAERR : 0;
    if (!text) {
        fprintf(stderr, "irp report: cannot render the report\n");
        rc = IRP_EXIT_SOFTWARE;
    } else if (out) {
        const char *what;
        if (write_atomic(out, text, &what) < 0) {
            fprintf(stderr, "irp report: %s %s: %s\n", what, out, strerror(errno));
            rc = IRP_EXIT_IOERR;
        }
    } else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
        rc = IRP_EXIT_IOERR;
    }
    if (broken) {
        const char *problem = pr_str(in, "problem") ? pr_str(in, "problem") : "?";
        char *safe = ut_term_safe(problem, strlen(problem), 0);
        fprintf(stderr, "irp report: WARNING: the journal fails verification (%s): records after seq %lld are "
                        "unverified (irp verify %s)\n",
                safe, (long long)json_integer_value(json_object_get(in, "verified_through")), target);
        free(safe);
    }
    free(text);
    json_decref(model);
    free(path);
    return rc;
}
