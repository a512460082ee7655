/*
 * cli.c — `irp COMMAND ...`: dispatch, and the options of run and drill.
 * Usage errors exit 64 with one line saying what is wrong and how to get
 * help.
 */
#include "cli.h"
#include "config.h"
#include "engine.h"
#include "notify.h"
#include "resume.h"
#include "scenario.h"
#include "state.h"
#include "term.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <lua.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#define DEFAULT_MEMORY ((int64_t)256 << 20)

int cli_is_help(const char *arg)
{
    return arg && (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help"));
}

long long cli_parse_size(const char *text)
{
    if (!text || !*text)
        return -1;
    char *end;
    double v = strtod(text, &end);
    if (end == text || !(v > 0)) /* also NaN */
        return -1;
    double unit = 1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
        unit = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
        unit = 1024.0 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
        unit = 1024.0 * 1024 * 1024;
    else if (*end)
        return -1;
    double bytes = v * unit;
    if (!(bytes >= 1) || bytes > 1e15) /* rounds to nothing, or absurd */
        return -1;
    return (long long)bytes;
}

__attribute__((format(printf, 2, 3))) static int usage_error(const char *command, const char *fmt, ...)
{
    fprintf(stderr, "irp %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(irp %s --help shows how to use it)\n", command);
    return IRP_EXIT_USAGE;
}

/* Takes the value of an option given as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(arg, name, n) && (arg[n] == '\0' || arg[n] == '=');
}

static int cmd_run(const char *command, int argc, char **argv)
{
    int drill = !strcmp(command, "drill");
    eng_options o;
    memset(&o, 0, sizeof o);
    o.drill = drill;
    o.speed = 1;
    o.memory = DEFAULT_MEMORY;
    json_t *vars = json_object(), *attach = json_array(), *plugins = json_array();
    o.vars = vars;
    o.attach = attach;
    o.plugins = plugins;
    int rc = IRP_EXIT_USAGE;
    int speed_given = 0;
    const char *scenario_path = NULL;
    sc_scenario *scenario = NULL;
    char *scenario_playbook = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (cli_is_help(a)) {
            cli_help(command);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "-v") || is_option(a, "--var")) {
            v = option_value(argc, argv, &i, "--var");
            const char *eq = v ? strchr(v, '=') : NULL;
            if (!eq || eq == v) {
                rc = usage_error(command, "-v needs KEY=VALUE (got '%s')", v ? v : "");
                goto done;
            }
            char *key = strndup(v, (size_t)(eq - v));
            json_t *value = json_string(eq + 1); /* NULL when not valid UTF-8 */
            if (!value || json_object_set_new(vars, key, value) < 0) {
                free(key);
                rc = usage_error(command, "-v %s: not valid UTF-8 text", v);
                goto done;
            }
            free(key);
        } else if (is_option(a, "--run-id")) {
            o.run_id = option_value(argc, argv, &i, "--run-id");
            if (!st_valid_run_id(o.run_id)) {
                rc = usage_error(command, "--run-id '%s' must be 1-64 letters, digits, '.', '_' or '-'", o.run_id ? o.run_id : "");
                goto done;
            }
        } else if (is_option(a, "--state-dir")) {
            o.state_dir = option_value(argc, argv, &i, "--state-dir");
            if (!o.state_dir) {
                rc = usage_error(command, "--state-dir needs a directory%s", "");
                goto done;
            }
        } else if (is_option(a, "--config")) {
            o.config = option_value(argc, argv, &i, "--config");
            if (!o.config || access(o.config, R_OK) < 0) {
                rc = usage_error(command, "--config: cannot read '%s'", o.config ? o.config : "");
                goto done;
            }
        } else if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
            o.yes = 1;
        } else if (is_option(a, "--memory")) {
            v = option_value(argc, argv, &i, "--memory");
            long long bytes = cli_parse_size(v);
            if (bytes < (1 << 20)) {
                rc = usage_error(command, "--memory '%s' must be a size of at least 1M (e.g. 256M, 1G)", v ? v : "");
                goto done;
            }
            o.memory = bytes;
        } else if (is_option(a, "--attach")) {
            v = option_value(argc, argv, &i, "--attach");
            if (!v) {
                rc = usage_error(command, "--attach needs a file%s", "");
                goto done;
            }
            json_array_append_new(attach, json_string(v));
        } else if (is_option(a, "--plugins")) {
            v = option_value(argc, argv, &i, "--plugins");
            if (!v) {
                rc = usage_error(command, "--plugins needs a directory%s", "");
                goto done;
            }
            json_array_append_new(plugins, json_string(v));
        } else if (drill && is_option(a, "--speed")) {
            v = option_value(argc, argv, &i, "--speed");
            char *end = NULL;
            o.speed = v ? strtod(v, &end) : 0;
            if (!v || !*v || *end || !(o.speed >= 1 && o.speed <= 100000)) { /* NaN fails both */
                rc = usage_error(command, "--speed '%s' must be a number from 1 to 100000", v ? v : "");
                goto done;
            }
            speed_given = 1;
        } else if (drill && !strcmp(a, "--live-notify")) {
            o.live_notify = 1;
        } else if (drill && is_option(a, "--scenario")) {
            scenario_path = option_value(argc, argv, &i, "--scenario");
            if (!scenario_path) {
                rc = usage_error(command, "--scenario needs a scenario file (e.g. playbooks/scenarios/ransomware-friday-night.lua)%s", "");
                goto done;
            }
        } else if (a[0] == '-' && a[1]) {
            rc = usage_error(command, "unknown option '%s'", a);
            goto done;
        } else if (!o.playbook) {
            o.playbook = a;
        } else {
            rc = usage_error(command, "one playbook at a time (got '%s' too)", a);
            goto done;
        }
    }
    if (scenario_path) {
        /* A broken scenario stops the drill before anything is recorded. */
        char err[1024];
        scenario = sc_load_file(scenario_path, err, sizeof err);
        if (!scenario) {
            fprintf(stderr, "%s\n", err);
            rc = IRP_EXIT_DATAERR;
            goto done;
        }
        if (!speed_given && scenario->speed > 0)
            o.speed = scenario->speed;
        o.scenario = scenario;
        /* The scenario may name its playbook and inputs; the command line wins. */
        if (!o.playbook && scenario->playbook)
            o.playbook = scenario_playbook = sc_playbook_path(scenario);
        else
            sc_note_playbook(scenario, o.playbook);
        const char *k;
        json_t *v;
        json_object_foreach(scenario->inputs, k, v) if (!json_object_get(vars, k)) json_object_set(vars, k, v);
    }
    if (!o.playbook) {
        rc = usage_error(command, "which playbook? e.g. irp %s playbooks/ransomware.lua -v host=web-07",
                         command);
        goto done;
    }
    if (access(o.playbook, R_OK) < 0) {
        fprintf(stderr, "irp %s: cannot read playbook '%s'\n", command, o.playbook);
        rc = IRP_EXIT_DATAERR;
        goto done;
    }
    {
        /* The configuration's attach section joins --attach (a resume
         * reloads what run.started recorded instead). */
        char err[1024];
        cf_config *cfg = cf_load(o.config, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "%s\n", err);
            rc = IRP_EXIT_DATAERR;
            goto done;
        }
        cf_attach_append(cfg, attach);
        cf_free(cfg);
    }
    rc = eng_run_playbook(&o);
done:
    free(scenario_playbook);
    sc_free(scenario);
    json_decref(vars);
    json_decref(attach);
    json_decref(plugins);
    return rc;
}

static int cmd_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("irp %s\n%s, libcurl %s, jansson %s, libuv %s\n", IRP_VERSION, LUA_RELEASE, cv->version,
           JANSSON_VERSION, uv_version_string());
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        cli_help(NULL);
        return argc < 2 ? IRP_EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run") || !strcmp(cmd, "drill"))
        return cmd_run(cmd, argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cli_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "list"))
        return cli_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "show"))
        return cli_show(argc - 1, argv + 1);
    if (!strcmp(cmd, "test"))
        return cli_test(argc - 1, argv + 1);
    if (!strcmp(cmd, "status"))
        return cli_status(argc - 1, argv + 1);
    if (!strcmp(cmd, "log"))
        return cli_log(argc - 1, argv + 1);
    if (!strcmp(cmd, "resume"))
        return cli_resume(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify"))
        return cli_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cli_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "outbox"))
        return cli_outbox(argc - 1, argv + 1);
    if (!strcmp(cmd, "notify"))
        return cli_notify(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (argc > 2 && cli_is_help(argv[2])) {
            cli_help("version");
            return 0;
        }
        return cmd_version();
    }
    fprintf(stderr, "irp: unknown command '%s'\n", cmd);
    cli_help(NULL);
    return IRP_EXIT_USAGE;
}
