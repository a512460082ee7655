/*
 * cli_record.c — commands that read a run's record: verify.
 */
#include "cli.h"
#include "journal.h"
#include "proto.h"
#include "state.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *cli_journal_path(const char *arg, const char *state_dir)
{
    struct stat st;
    if (strchr(arg, '/') || (stat(arg, &st) == 0 && S_ISREG(st.st_mode)))
        return ut_xstrdup(arg);
    return ut_xasprintf("%s/runs/%s/journal.jsonl", st_state_dir(state_dir), arg);
}

int cli_verify(int argc, char **argv)
{
    const char *target = NULL, *state_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("verify");
            return 0;
        }
        if (!strncmp(argv[i], "--state-dir", 11)) {
            state_dir = argv[i][11] == '=' ? argv[i] + 12 : (i + 1 < argc ? argv[++i] : NULL);
        } else if (argv[i][0] == '-' || target) {
            fprintf(stderr, "irp verify: unexpected '%s' (irp verify --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        } else {
            target = argv[i];
        }
    }
    if (!target) {
        fprintf(stderr, "irp verify: which run? (irp verify --help)\n");
        return IRP_EXIT_USAGE;
    }
    char *path = cli_journal_path(target, state_dir);
    jr_verify_result res;
    memset(&res, 0, sizeof res);
    if (jr_verify_file(path, &res) < 0) {
        fprintf(stderr, "irp verify: %s: %s\n", path, res.what);
        free(path);
        return IRP_EXIT_DATAERR;
    }
    int rc = 0;
    if (res.intact) {
        printf("intact: %s: %lld records, hash chain verified\n", path, res.records);
        /* A chain cannot show records cut off its end: the head hash, copied
         * into the incident ticket, is what later proves nothing was. */
        printf("head: seq %lld sha256:%s\n", res.head_seq, res.head);
    } else {
        printf("BROKEN: %s: %s\n", path, res.what);
        rc = IRP_EXIT_DATAERR;
    }
    free(path);
    return rc;
}
