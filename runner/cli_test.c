/*
 * cli_test.c — `irp test [SCENARIO|DIR]...`: the playbook tests. Each
 * scenario that names its playbook (`playbook = "../x.lua"`, `inputs =
 * {...}`) is drilled unattended in its own child `irp drill`, in a
 * throw-away state directory, with no input (an unscripted prompt ends
 * the drill as "no answer"); PASS when the drill exits 0, that is when
 * every expectation of the scenario held. A failure prints the
 * scorecard's mismatches (or the end of the drill's output). This is
 * what `make check` does for the shipped playbooks, as one command for
 * an author's own.
 */
#include "cli.h"
#include "proto.h"
#include "scenario.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_TIME_LIMIT_S 600 /* one drill: a scenario that waits in real time is a broken test */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Adds DIR/scenarios/ *.lua (or DIR/ *.lua when there is no scenarios/), sorted. */
static void add_dir(json_t *files, const char *dir)
{
    char *sub = ut_xasprintf("%s/scenarios", dir);
    const char *from = is_dir(sub) ? sub : dir;
    DIR *d = opendir(from);
    json_t *found = json_array();
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".lua") && e->d_name[0] != '.') {
            char *p = ut_xasprintf("%s/%s", from, e->d_name);
            json_array_append_new(found, json_string(p));
            free(p);
        }
    }
    if (d)
        closedir(d);
    size_t n = json_array_size(found);
    json_t **items = ut_xcalloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(found, i);
    qsort(items, n, sizeof *items, by_name);
    for (size_t i = 0; i < n; i++)
        json_array_append(files, items[i]);
    free(items);
    json_decref(found);
    free(sub);
}

/* Runs `irp drill --scenario path` (plus extra) in state_dir; its output
 * goes to log. The exit code, or -1 when it ran past the time limit. */
static int drill_child(const char *path, const char *state_dir, const char *run_id, const char *log, json_t *extra)
{
    size_t n = json_array_size(extra);
    const char **argv = ut_xcalloc(n + 10, sizeof *argv);
    size_t k = 0;
    argv[k++] = "irp";
    argv[k++] = "drill";
    argv[k++] = "--scenario";
    argv[k++] = path;
    argv[k++] = "--state-dir";
    argv[k++] = state_dir;
    argv[k++] = "--run-id";
    argv[k++] = run_id;
    for (size_t i = 0; i < n; i++)
        argv[k++] = json_string_value(json_array_get(extra, i));
    argv[k] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0)
            _exit(70);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        setenv("NO_COLOR", "1", 1);
        execv("/proc/self/exe", (char *const *)argv);
        _exit(70);
    }
    free(argv);
    if (pid < 0)
        return 70;
    int64_t deadline = ut_mono_ms() + (int64_t)TEST_TIME_LIMIT_S * 1000;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return 70;
        if (ut_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The drill.scorecard record of a run's journal (new ref), or NULL. */
static json_t *scorecard_of(const char *state_dir, const char *run_id)
{
    char *path = ut_xasprintf("%s/runs/%s/journal.jsonl", state_dir, run_id);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return NULL;
    json_t *card = NULL;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, "\"drill.scorecard\""))
            continue;
        json_t *rec = json_loads(line, 0, NULL);
        if (rec && !strcmp(pr_str(rec, "type") ? pr_str(rec, "type") : "", "drill.scorecard")) {
            json_decref(card);
            card = json_incref(json_object_get(rec, "data"));
        }
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return card;
}

static void print_tail(const char *log, int lines)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char *ring[32] = {0};
    int count = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        free(ring[count % lines]);
        ring[count % lines] = ut_xstrdup(line);
        count++;
    }
    free(line);
    fclose(f);
    for (int i = count > lines ? count - lines : 0; i < count; i++)
        printf("       | %s", ring[i % lines]);
    for (int i = 0; i < lines; i++)
        free(ring[i]);
}

/* One scenario: 1 passed, 0 failed. */
static int test_one(const char *path, const char *state_dir, int index, json_t *extra, int verbose)
{
    char err[1024];
    sc_scenario *sc = sc_load_file(path, err, sizeof err);
    if (!sc) {
        printf("FAIL %s\n       %s\n", path, err);
        return 0;
    }
    char *playbook = sc_playbook_path(sc);
    if (!playbook) {
        printf("FAIL %s\n       the scenario names no playbook: add playbook = \"../my-playbook.lua\" "
               "(relative to the scenario) and its inputs = { ... }\n", path);
        sc_free(sc);
        return 0;
    }
    char *run_id = ut_xasprintf("test-%d", index);
    char *log = ut_xasprintf("%s/%s.log", state_dir, run_id);
    int64_t t0 = ut_mono_ms();
    int code = drill_child(path, state_dir, run_id, log, extra);
    double secs = (double)(ut_mono_ms() - t0) / 1000.0;
    json_t *card = scorecard_of(state_dir, run_id);
    const char *verdict = card ? pr_str(card, "verdict") : NULL;
    int passed = code == 0;
    /* The playbook as people name it: relative to here when it is below here. */
    char *real = realpath(playbook, NULL), *cwd = getcwd(NULL, 0);
    size_t cn = cwd ? strlen(cwd) : 0;
    const char *shown = real && cwd && !strncmp(real, cwd, cn) && real[cn] == '/' ? real + cn + 1 : real ? real : playbook;
    printf("%s %s (%s)  %.1fs%s\n", passed ? "PASS" : "FAIL", path, shown, secs,
           passed && verdict && !strcmp(verdict, "none") ? "  - no `expect` in the scenario: it ran, nothing was checked"
                                                         : "");
    if (!passed) {
        if (code < 0)
            printf("       the drill ran longer than %d s (a step that waits in real time? give the scenario a speed)\n",
                   TEST_TIME_LIMIT_S);
        else
            printf("       the drill exited %d%s%s\n", code, card ? ", ended " : "", card ? pr_str(card, "status") : "");
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(card, "mismatches"), i, m) printf("       - %s\n", json_string_value(m));
        if (!json_array_size(json_object_get(card, "mismatches")))
            print_tail(log, 12);
    }
    if (verbose)
        print_tail(log, 32);
    free(real);
    free(cwd);
    json_decref(card);
    free(log);
    free(run_id);
    free(playbook);
    sc_free(sc);
    return passed;
}

int cli_test(int argc, char **argv)
{
    json_t *files = json_array(), *extra = json_array();
    int verbose = 0, rc = IRP_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            cli_help("test");
            rc = 0;
            goto done;
        }
        if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--plugins") || !strcmp(a, "--attach") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "irp test: %s needs a value (irp test --help)\n", a);
                goto done;
            }
            json_array_append_new(extra, json_string(a));
            json_array_append_new(extra, json_string(argv[++i]));
        } else if (a[0] == '-') {
            fprintf(stderr, "irp test: unknown option '%s' (irp test --help)\n", a);
            goto done;
        } else if (is_dir(a)) {
            add_dir(files, a);
        } else if (access(a, R_OK) == 0) {
            json_array_append_new(files, json_string(a));
        } else {
            fprintf(stderr, "irp test: cannot read '%s'\n", a);
            rc = IRP_EXIT_DATAERR;
            goto done;
        }
    }
    if (argc < 2 || !json_array_size(files)) {
        if (argc < 2)
            add_dir(files, is_dir("playbooks") ? "playbooks" : ".");
        if (!json_array_size(files)) {
            fprintf(stderr, "irp test: no scenario files found (irp test --help)\n");
            rc = IRP_EXIT_DATAERR;
            goto done;
        }
    }
    char *dir = ut_temp_dir("irp-test");
    if (!dir) {
        fprintf(stderr, "irp test: cannot make a temporary directory: %s\n", strerror(errno));
        rc = IRP_EXIT_IOERR;
        goto done;
    }
    size_t i, passed = 0, total = json_array_size(files);
    json_t *f;
    json_array_foreach(files, i, f) passed += (size_t)test_one(json_string_value(f), dir, (int)i + 1, extra, verbose);
    ut_remove_tree(dir);
    free(dir);
    printf("%zu passed, %zu failed\n", passed, total - passed);
    rc = passed == total ? 0 : IRP_EXIT_FAILED;
done:
    json_decref(files);
    json_decref(extra);
    return rc;
}
