/*
 * cli_info.c — commands that read playbooks without running them: check,
 * list and show. Each playbook is loaded in a fresh worker, exactly as a
 * run would load it, so what check accepts is what run accepts.
 */
#include "check_drill.h"
#include "cli.h"
#include "config.h"
#include "engine.h"
#include "scenario.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INFO_MEMORY ((int64_t)256 << 20)

/* --attach FILE and --plugins DIR, as run and drill take them, so that what
 * check and show see is what a run would load. */
static json_t *attach_files, *plugin_dirs;

/* Takes argv[*i] if it is --attach or --plugins (with its value). 1 when
 * taken, 0 when not one of them, -1 when its value is missing. */
static int take_load_option(int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    json_t **list = !strncmp(a, "--attach", 8) && (a[8] == '\0' || a[8] == '=') ? &attach_files
                  : !strncmp(a, "--plugins", 9) && (a[9] == '\0' || a[9] == '=') ? &plugin_dirs
                                                                                 : NULL;
    if (!list)
        return 0;
    const char *eq = strchr(a, '=');
    const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!v || !*v)
        return -1;
    if (!*list)
        *list = json_array();
    json_array_append_new(*list, json_string(v));
    return 1;
}

/* Adds the configuration's attach section (config.h; --config, else
 * $IRP_CONFIG, else ./irp.conf.lua) to the attach files, as a run would.
 * 0, or -1 after printing why the configuration is bad. */
static int take_config_attach(const char *config)
{
    char err[1024];
    cf_config *c = cf_load(config, err, sizeof err);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (c->nattach) {
        if (!attach_files)
            attach_files = json_array();
        cf_attach_append(c, attach_files);
    }
    cf_free(c);
    return 0;
}

/* Loads path; prints problems. Returns the outline (new ref) or NULL. */
static json_t *load_quiet(const char *path, int print_errors, int *count_errors)
{
    char err[512];
    json_t *empty = json_object(), *none = json_array();
    json_t *answer = eng_load_outline(path, empty, attach_files ? attach_files : none,
                                      plugin_dirs ? plugin_dirs : none, 1, INFO_MEMORY, err, sizeof err);
    json_decref(empty);
    json_decref(none);
    if (!answer) {
        if (print_errors)
            fprintf(stderr, "%s\n", err);
        if (count_errors)
            *count_errors = 1;
        return NULL;
    }
    const char *t = pr_str(answer, "t");
    if (t && !strcmp(t, "loaded")) {
        json_t *outline = json_incref(json_object_get(answer, "outline"));
        json_decref(answer);
        return outline;
    }
    json_t *errors = json_object_get(answer, "errors");
    if (count_errors)
        *count_errors = (int)json_array_size(errors);
    if (print_errors) {
        size_t i;
        json_t *e;
        json_array_foreach(errors, i, e)
        {
            long long line = pr_int(e, "line", 0);
            const char *file = pr_str(e, "file") ? pr_str(e, "file") : path;
            const char *msg = pr_str(e, "msg") ? pr_str(e, "msg") : "?";
            if (line > 0)
                fprintf(stderr, "%s:%lld: %s\n", file, line, msg);
            else
                fprintf(stderr, "%s: %s\n", file, msg);
        }
        if (!json_array_size(errors))
            fprintf(stderr, "%s: the worker answered '%s'\n", path, t ? t : "?");
    }
    json_decref(answer);
    return NULL;
}

int cli_check(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "irp check: which playbook? (irp check --help)\n");
        return IRP_EXIT_USAGE;
    }
    int bad = 0;
    json_t *files = json_array();
    int drill = 0;
    const char *scenario = NULL, *config = NULL;
    json_t *vars = json_object();
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("check");
            json_decref(files);
            json_decref(vars);
            return 0;
        }
        const char *a = argv[i];
        if (!strcmp(a, "--drill")) {
            drill = 1;
            continue;
        }
        if (!strcmp(a, "--scenario") || !strcmp(a, "--config") || !strcmp(a, "-v") || !strcmp(a, "--var")) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            const char *eq = v ? strchr(v, '=') : NULL;
            json_t *value = eq ? json_string(eq + 1) : NULL;
            int is_var = !strcmp(a, "-v") || !strcmp(a, "--var");
            if (!v || (is_var && (!eq || eq == v || !value))) {
                fprintf(stderr, "irp check: %s needs %s (irp check --help)\n", a,
                        a[2] == 's' ? "a scenario file" : a[2] == 'c' ? "a configuration file" : "KEY=VALUE");
                json_decref(value);
                json_decref(files);
                json_decref(vars);
                return IRP_EXIT_USAGE;
            }
            if (!strcmp(a, "--scenario"))
                scenario = v;
            else if (!strcmp(a, "--config"))
                config = v;
            else {
                char *key = strndup(v, (size_t)(eq - v));
                json_object_set_new(vars, key, value);
                value = NULL;
                free(key);
            }
            json_decref(value);
            continue;
        }
        int taken = take_load_option(argc, argv, &i);
        if (taken < 0 || (!taken && argv[i][0] == '-')) {
            fprintf(stderr, "irp check: %s '%s' (irp check --help)\n", taken < 0 ? "no value for" : "unknown option",
                    argv[i]);
            json_decref(files);
            json_decref(vars);
            return IRP_EXIT_USAGE;
        }
        if (!taken)
            json_array_append_new(files, json_string(argv[i]));
    }
    if (!json_array_size(files) && drill && scenario) {
        /* irp check --drill --scenario FILE: the playbook the scenario names. */
        char err[1024];
        sc_scenario *sc = sc_load_file(scenario, err, sizeof err);
        char *pb = sc ? sc_playbook_path(sc) : NULL;
        if (pb)
            json_array_append_new(files, json_string(pb));
        else
            fprintf(stderr, "%s\n", sc ? "the scenario names no playbook (playbook = \"../x.lua\"): give one" : err);
        free(pb);
        sc_free(sc);
        if (!json_array_size(files)) {
            json_decref(files);
            json_decref(vars);
            return IRP_EXIT_DATAERR;
        }
    }
    if (!json_array_size(files) || ((scenario || json_object_size(vars)) && !drill)) {
        fprintf(stderr, "irp check: %s (irp check --help)\n",
                json_array_size(files) ? "--scenario and -v go with --drill" : "which playbook?");
        json_decref(files);
        json_decref(vars);
        return IRP_EXIT_USAGE;
    }
    if (take_config_attach(config) < 0) {
        json_decref(files);
        json_decref(vars);
        return IRP_EXIT_DATAERR;
    }
    json_t *none = json_array();
    size_t fi;
    json_t *fv;
    json_array_foreach(files, fi, fv)
    {
        const char *file = json_string_value(fv);
        int nerr = 0;
        json_t *o = load_quiet(file, 1, &nerr);
        if (o) {
            size_t si, nattached = 0;
            json_t *sv;
            json_array_foreach(json_object_get(o, "steps"), si, sv) nattached += pr_str(sv, "source") && strcmp(pr_str(sv, "source"), "playbook") != 0;
            size_t nsteps = json_array_size(json_object_get(o, "steps"));
            printf("ok  %s: %s, %zu step%s", file, pr_str(o, "id") ? pr_str(o, "id") : "?", nsteps,
                   nsteps == 1 ? "" : "s");
            if (nattached)
                printf(" (%zu attached)", nattached);
            printf("\n");
            if (drill) {
                int rc = cd_check(file, vars, attach_files ? attach_files : none, plugin_dirs ? plugin_dirs : none,
                                  scenario, config, o);
                if (rc && (!bad || bad == IRP_EXIT_DATAERR))
                    bad = rc;
            }
            json_decref(o);
        } else {
            printf("BAD %s: %d problem%s\n", file, nerr, nerr == 1 ? "" : "s");
            if (!bad)
                bad = IRP_EXIT_DATAERR;
        }
    }
    json_decref(files);
    json_decref(vars);
    json_decref(none);
    return bad;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_list(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("list");
            return 0;
        }
        if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "irp list: unexpected '%s' (irp list --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        }
        dir = argv[i];
    }
    struct stat st;
    if (!dir)
        dir = stat("playbooks", &st) == 0 && S_ISDIR(st.st_mode) ? "playbooks" : ".";
    DIR *d = opendir(dir);
    if (!d) {
        /* "irp list: /nonexistent: No such file or directory" */
        fprintf(stderr, "irp list: %s: %s\n", dir, strerror(errno));
        return IRP_EXIT_DATAERR;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".lua") && e->d_name[0] != '.') {
            names = ut_xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = ut_xasprintf("%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int bad = 0;
    if (n)
        printf("%-20s %-9s %5s  %s\n", "ID", "SEVERITY", "STEPS", "TITLE (FILE)");
    for (size_t i = 0; i < n; i++) {
        int nerr = 0;
        json_t *o = load_quiet(names[i], 0, &nerr);
        if (o)
            printf("%-20s %-9s %5zu  %s (%s)\n", pr_str(o, "id"), pr_str(o, "severity") ? pr_str(o, "severity") : "",
                   json_array_size(json_object_get(o, "steps")), pr_str(o, "title") ? pr_str(o, "title") : "",
                   names[i]);
        else {
            printf("%-20s %-9s %5s  %d problem%s: irp check %s\n", "(invalid)", "", "-", nerr,
                   nerr == 1 ? "" : "s", names[i]);
            bad = 1;
        }
        json_decref(o);
        free(names[i]);
    }
    if (!n)
        printf("no playbooks (*.lua) in %s\n", dir);
    free(names);
    return bad ? IRP_EXIT_DATAERR : 0;
}

static void show_step(json_t *s, size_t index)
{
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    const char *kind = pr_str(s, "kind");
    ut_buf_puts(&b, kind && !strcmp(kind, "manual") ? "manual" : "run");
    if (pr_str(s, "approval"))
        ut_buf_printf(&b, ", approval: %s", pr_str(s, "approval"));
    if (pr_bool(s, "has_when", 0))
        ut_buf_puts(&b, ", when");
    char d[32];
    if (pr_int(s, "timeout_ms", 0) > 0) {
        ut_format_duration(pr_int(s, "timeout_ms", 0), d, sizeof d);
        ut_buf_printf(&b, ", timeout %s", d);
    }
    if (pr_int(s, "retries", 0) > 0) {
        ut_format_duration(pr_int(s, "backoff_ms", 0), d, sizeof d);
        ut_buf_printf(&b, ", retries %lld (backoff %s)", pr_int(s, "retries", 0), d);
    }
    const char *of = pr_str(s, "on_failure");
    if (of && strcmp(of, "abort") != 0)
        ut_buf_printf(&b, ", on_failure %s", of);
    if (pr_bool(s, "idempotent", 0))
        ut_buf_puts(&b, ", idempotent");
    if (!json_is_object(json_object_get(s, "drill")) && kind && strcmp(kind, "manual") != 0)
        ut_buf_puts(&b, ", no drill table");
    const char *source = pr_str(s, "source");
    if (source && strcmp(source, "playbook") != 0)
        ut_buf_printf(&b, ", attached from %s", source);
    printf("  %2zu. %-22s %s\n      [%s]\n", index + 1, pr_str(s, "id"), pr_str(s, "title") ? pr_str(s, "title") : "",
           b.data);
    ut_buf_free(&b);
}

int cli_show(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "irp show: which playbook? (irp show --help)\n");
        return IRP_EXIT_USAGE;
    }
    const char *file = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cli_help("show");
            return 0;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "irp show: --config needs a configuration file (irp show --help)\n");
                return IRP_EXIT_USAGE;
            }
            config = argv[++i];
            continue;
        }
        int taken = take_load_option(argc, argv, &i);
        if (taken < 0 || (!taken && (argv[i][0] == '-' || file))) {
            fprintf(stderr, "irp show: unexpected '%s' (one playbook at a time; irp show --help)\n", argv[i]);
            return IRP_EXIT_USAGE;
        }
        if (!taken)
            file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "irp show: which playbook? (irp show --help)\n");
        return IRP_EXIT_USAGE;
    }
    if (take_config_attach(config) < 0)
        return IRP_EXIT_DATAERR;
    json_t *o = load_quiet(file, 1, NULL);
    if (!o)
        return IRP_EXIT_DATAERR;
    const char *version = pr_str(o, "version") ? pr_str(o, "version") : "";
    printf("%s (%s%s%s), severity %s\n", pr_str(o, "title"), pr_str(o, "id"), *version ? " " : "", version,
           pr_str(o, "severity") ? pr_str(o, "severity") : "medium");
    if (pr_str(o, "description"))
        printf("%s\n", pr_str(o, "description"));
    const char *k;
    json_t *v;
    json_t *inputs = json_object_get(o, "inputs");
    if (json_object_size(inputs)) {
        printf("\ninputs:\n");
        json_object_foreach(inputs, k, v)
        {
            const char *def = pr_str(v, "default");
            int shown = def && *def;
            printf("  %-16s %s%s%s%s\n", k, pr_bool(v, "required", 0) ? "required" : "optional",
                   shown ? " (default " : "", shown ? def : "", shown ? ")" : "");
            if (pr_str(v, "doc"))
                printf("  %-16s %s\n", "", pr_str(v, "doc"));
        }
    }
    json_t *objectives = json_object_get(o, "objectives");
    if (json_object_size(objectives)) {
        printf("\nobjectives:\n");
        json_object_foreach(objectives, k, v)
        {
            char d[32];
            ut_format_duration(json_integer_value(v), d, sizeof d);
            printf("  %-16s %s\n", k, d);
        }
    }
    json_t *esc = json_object_get(o, "escalation");
    if (json_array_size(esc)) {
        printf("\nescalation:\n");
        size_t i;
        json_array_foreach(esc, i, v)
        {
            char d[32];
            ut_format_duration(pr_int(v, "after_ms", 0), d, sizeof d);
            char *targets = json_dumps(json_object_get(v, "notify"), JSON_COMPACT);
            printf("  tier %zu  %s  %s\n", i + 1, pr_int(v, "after_ms", 0) ? d : "at start", targets ? targets : "[]");
            free(targets);
        }
    }
    json_t *steps = json_object_get(o, "steps");
    const char *phase = "\x01";
    size_t i;
    json_array_foreach(steps, i, v)
    {
        const char *p = pr_str(v, "phase") ? pr_str(v, "phase") : "";
        if (strcmp(p, phase) != 0) {
            printf("\n%s\n", *p ? p : "(no phase)");
            phase = p;
        }
        show_step(v, i);
    }
    json_decref(o);
    return 0;
}
