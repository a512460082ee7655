/*
 * report_header.c — the rows of a report's header (playbook, run, who, when,
 * status, failure, scenario, drill clock, step counts), as label/value
 * pairs from the model, so that the Markdown and HTML renderings say the
 * same things in the same order and only lay them out differently.
 * Depends on: jansson, report.h, proto.h, util.h.
 */
#include "report.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const char *or(const char *s, const char *otherwise)
{
    return s ? s : otherwise;
}

/* Appends [label, value] (value NULL: json null, shown as "-"); steals value. */
static void row(json_t *rows, const char *label, char *value)
{
    json_array_append_new(rows, json_pack("[s, s?]", label, value));
    free(value);
}

static char *dup(const char *s)
{
    return s ? ut_xstrdup(s) : NULL;
}

json_t *rp_header_rows(json_t *m)
{
    json_t *rows = json_array();
    json_t *pb = json_object_get(m, "playbook");
    int drill = json_is_true(json_object_get(m, "drill"));
    const char *version = pr_str(pb, "version") && *pr_str(pb, "version") ? pr_str(pb, "version") : NULL;
    row(rows, "Playbook", ut_xasprintf("%s (%s%s%s)", or(pr_str(pb, "title"), "?"), or(pr_str(pb, "id"), "?"),
                                       version ? " " : "", or(version, "")));
    row(rows, "Playbook file", dup(or(pr_str(pb, "path"), pr_str(pb, "file"))));
    row(rows, "Playbook SHA-256", dup(pr_str(pb, "sha256")));
    row(rows, "Run", ut_xasprintf("%s (%s)", or(pr_str(m, "run"), "?"), drill ? "DRILL" : "live"));
    row(rows, "Severity", dup(pr_str(pb, "severity")));
    row(rows, "Started by", ut_xasprintf("%s on %s%s", or(pr_str(m, "operator"), "?"), or(pr_str(m, "host"), "?"),
                                         json_is_true(json_object_get(m, "yes")) ? " (--yes: unattended answers)"
                                                                                 : ""));
    row(rows, "Started (UTC)", dup(pr_str(m, "started")));
    row(rows, "Ended (UTC)", dup(or(pr_str(m, "ended"), "still open")));
    const char *status = or(pr_str(m, "status"), "?");
    long long pid = pr_int(m, "running_pid", 0);
    row(rows, "Status",
        json_is_true(json_object_get(m, "running"))
            ? (pid > 0 ? ut_xasprintf("%s (running now, pid %lld)", status, pid)
                       : ut_xasprintf("%s (running now)", status))
        : !strcmp(status, "open") ? ut_xstrdup("open (stopped without ending: irp resume continues it)")
                                  : ut_xstrdup(status));
    json_t *failure = json_object_get(m, "failure");
    if (json_is_object(failure))
        row(rows, "Failed at",
            ut_xasprintf("step %s: %s", or(pr_str(failure, "step"), "?"), or(pr_str(failure, "reason"), "?")));
    if (drill) {
        row(rows, "Scenario", dup(or(pr_str(m, "scenario_title"), pr_str(m, "scenario"))));
        row(rows, "Drill clock", ut_xasprintf("%gx", json_number_value(json_object_get(m, "speed"))));
    }
    json_t *steps = json_object_get(m, "steps");
    row(rows, "Steps",
        ut_xasprintf("%lld in the playbook: %lld succeeded, %lld failed, %lld skipped", pr_int(steps, "total", 0),
                     pr_int(steps, "succeeded", 0), pr_int(steps, "failed", 0), pr_int(steps, "skipped", 0)));
    return rows;
}
