/*
 * report_md.c — the report model as Markdown, written to read as plain
 * text too (a terminal, an e-mail, a ticket). Journal text is made safe
 * first: control characters in caret notation (ut_term_safe, as `irp log`
 * shows them), newlines in a table cell as " / ", and the Markdown
 * characters that would break a table or start markup (| \ ` * [ ] <)
 * backslash-escaped.
 * Depends on: jansson, report.h, proto.h, util.h.
 */
#include "report.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s as the text of a Markdown table cell or line. */
static void md(ut_buf *b, const char *s)
{
    if (!s)
        return;
    char *safe = ut_term_safe(s, strlen(s), 1);
    for (const char *p = safe; *p; p++) {
        if (*p == '\n')
            ut_buf_puts(b, " / ");
        else if (*p == '\r' || *p == '\t')
            ut_buf_puts(b, " ");
        else if (strchr("|\\`*[]<", *p)) {
            char esc[3] = {'\\', *p, 0};
            ut_buf_puts(b, esc);
        } else
            ut_buf_append(b, p, 1);
    }
    free(safe);
}

static const char *str(json_t *o, const char *key)
{
    return pr_str(o, key);
}

/* "T+4m00s" on the run's clock. */
static void put_t(ut_buf *b, json_t *o, const char *key)
{
    char d[32];
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        ut_buf_printf(b, "T+%s", rp_duration(json_integer_value(v), d));
    else
        ut_buf_puts(b, "-");
}

/* The time of day of an RFC 3339 time ("10:06:00Z"), or "-". */
static void put_clock(ut_buf *b, const char *ts)
{
    if (ts && strlen(ts) >= 19)
        ut_buf_printf(b, "%.8sZ", ts + 11);
    else
        ut_buf_puts(b, "-");
}

static void kv(ut_buf *b, const char *key, const char *value)
{
    ut_buf_printf(b, "| %s | ", key);
    md(b, value ? value : "-");
    ut_buf_puts(b, " |\n");
}

static void header(ut_buf *b, json_t *m)
{
    json_t *pb = json_object_get(m, "playbook");
    int drill = json_is_true(json_object_get(m, "drill"));
    ut_buf_puts(b, drill ? "# DRILL REPORT: " : "# Incident report: ");
    md(b, str(pb, "title") ? str(pb, "title") : str(pb, "id"));
    ut_buf_puts(b, "\n\n");
    if (drill)
        ut_buf_puts(b, "> **DRILL: a tabletop exercise, not a real incident. Every command and notification "
                       "was simulated.**\n\n");
    ut_buf_puts(b, "| | |\n|---|---|\n");
    json_t *rows = rp_header_rows(m);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *label = json_string_value(json_array_get(r, 0));
        char *value = json_is_string(json_array_get(r, 1)) ? ut_xstrdup(json_string_value(json_array_get(r, 1)))
                                                           : NULL;
        if (value && !strcmp(label, "Status")) /* the outcome's word stands out in plain text */
            for (char *p = value; *p && *p != ' '; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 'a' + 'A');
        kv(b, label, value);
        free(value);
    }
    json_decref(rows);
    json_t *inputs = json_object_get(m, "inputs");
    if (json_object_size(inputs)) {
        ut_buf_puts(b, "\nInputs (-v):\n\n| Input | Value |\n|---|---|\n");
        const char *k;
        json_t *v;
        json_object_foreach(inputs, k, v)
        {
            char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            kv(b, k, s ? s : json_string_value(v));
            free(s);
        }
    }
}

static void integrity(ut_buf *b, json_t *m)
{
    json_t *in = json_object_get(m, "integrity");
    ut_buf_puts(b, "\n## Integrity\n\n");
    if (json_is_true(json_object_get(in, "intact"))) {
        ut_buf_printf(b, "journal verified: %lld records, head seq %lld sha256:%s\n", pr_int(in, "records", 0),
                      pr_int(in, "head_seq", 0), str(in, "head") ? str(in, "head") : "");
        if (pr_int(in, "torn_bytes", 0))
            ut_buf_printf(b, "\nThe journal ends with a torn record (%lld bytes, a crash or a write in progress); "
                             "it is not part of this report.\n", pr_int(in, "torn_bytes", 0));
    } else {
        ut_buf_puts(b, "**WARNING: THE JOURNAL FAILS VERIFICATION. It was changed or damaged after it was "
                       "written: ");
        md(b, str(in, "problem"));
        ut_buf_printf(b, ".** Records 1 to %lld verified; everything after them is shown as read, unverified "
                         "(marked `?` in the timeline).",
                      pr_int(in, "verified_through", 0));
        if (pr_int(in, "unreadable_lines", 0))
            ut_buf_printf(b, " %lld unreadable line(s) left out.", pr_int(in, "unreadable_lines", 0));
        ut_buf_puts(b, "\n");
    }
    ut_buf_puts(b, "\nJournal: ");
    md(b, str(in, "journal"));
    ut_buf_puts(b, "\n");
}

static void metric(ut_buf *b, const char *label, json_t *v, const char *detail, const char *missing)
{
    char d[32];
    ut_buf_printf(b, "| %s | %s | ", label, json_is_object(v) ? rp_duration(pr_int(v, "ms", -1), d) : "-");
    md(b, json_is_object(v) ? detail : missing);
    ut_buf_puts(b, " |\n");
}

static void metrics(ut_buf *b, json_t *m)
{
    json_t *mt = json_object_get(m, "metrics");
    int drill = json_is_true(json_object_get(m, "drill"));
    ut_buf_printf(b, "\n## Metrics\n\nFrom the start of the run, on the %s.\n\n| Metric | Time | Detail |\n"
                     "|---|---|---|\n",
                  drill ? "drill clock (simulated time)" : "wall clock");
    json_t *a = json_object_get(mt, "acknowledge");
    char *ack = json_is_object(a) ? ut_xasprintf("first operator action: %s by %s%s%s, record %lld", str(a, "event"),
                                                 str(a, "by") ? str(a, "by") : "?", str(a, "step") ? " at step " : "",
                                                 str(a, "step") ? str(a, "step") : "", pr_int(a, "seq", 0))
                                  : NULL;
    metric(b, "Time to acknowledge", a, ack, "no operator action on record");
    free(ack);
    metric(b, "Time to contain", json_object_get(mt, "contain"), "end of the containment phase",
           "not reached (no containment phase, or it is not finished)");
    json_t *r = json_object_get(mt, "resolve");
    char *res = json_is_object(r) ? ut_xasprintf("run finished: %s", str(r, "status") ? str(r, "status") : "?") : NULL;
    metric(b, "Time to resolve", r, res, "the run has not finished");
    free(res);
    json_t *phases = json_object_get(m, "phases");
    if (json_array_size(phases)) {
        ut_buf_puts(b, "\n| Phase | Start | End | Duration |\n|---|---|---|---|\n");
        size_t i;
        json_t *p;
        json_array_foreach(phases, i, p)
        {
            char d[32];
            ut_buf_puts(b, "| ");
            md(b, str(p, "phase"));
            ut_buf_puts(b, " | ");
            put_t(b, p, "start_ms");
            ut_buf_puts(b, " | ");
            if (json_is_integer(json_object_get(p, "end_ms")))
                put_t(b, p, "end_ms");
            else
                ut_buf_puts(b, "open");
            ut_buf_printf(b, " | %s |\n", rp_duration(pr_int(p, "duration_ms", -1), d));
        }
    }
    json_t *objs = json_object_get(m, "objectives");
    if (json_array_size(objs)) {
        ut_buf_puts(b, "\n| Objective | About | Limit | Reached | Verdict |\n|---|---|---|---|---|\n");
        size_t i;
        json_t *o;
        json_array_foreach(objs, i, o)
        {
            char d[32];
            const char *verdict = str(o, "verdict") ? str(o, "verdict") : "?";
            ut_buf_puts(b, "| ");
            md(b, str(o, "objective"));
            ut_buf_puts(b, " | ");
            md(b, str(o, "phase") ? str(o, "phase") : "the whole run");
            ut_buf_printf(b, " | %s | ", rp_duration(pr_int(o, "limit_ms", -1), d));
            put_t(b, o, "reached_ms");
            ut_buf_printf(b, " | %s%s%s |\n", strcmp(verdict, "met") ? "**" : "", !strcmp(verdict, "breached") ? "BREACHED" : verdict,
                          strcmp(verdict, "met") ? "**" : "");
        }
    }
}

/* A table row start: "| T+.. | 10:06:00Z | " */
static void when(ut_buf *b, json_t *r)
{
    ut_buf_puts(b, "| ");
    put_t(b, r, "t_ms");
    ut_buf_puts(b, " | ");
    put_clock(b, str(r, "ts"));
    ut_buf_puts(b, " | ");
}

static void cells(ut_buf *b, json_t *r, const char *const *keys)
{
    for (int k = 0; keys[k]; k++) {
        md(b, str(r, keys[k]) ? str(r, keys[k]) : "");
        ut_buf_puts(b, " | ");
    }
    b->len--; /* the trailing space */
    b->data[b->len] = '\0';
    ut_buf_puts(b, "\n");
}

static void tables(ut_buf *b, json_t *m)
{
    size_t i;
    json_t *r;
    ut_buf_puts(b, "\n## Approvals and decisions\n\n");
    if (!json_array_size(json_object_get(m, "decisions")))
        ut_buf_puts(b, "None on record.\n");
    else
        ut_buf_puts(b, "| Time | UTC | Step | Event | Who | Answer | Via | Note |\n|---|---|---|---|---|---|---|---|\n");
    json_array_foreach(json_object_get(m, "decisions"), i, r)
    {
        static const char *const keys[] = {"step", "type", "actor", "answer", "via", "note", NULL};
        when(b, r);
        cells(b, r, keys);
    }
    ut_buf_puts(b, "\n## Escalations\n\n");
    if (!json_array_size(json_object_get(m, "escalations")))
        ut_buf_puts(b, "None.\n");
    else
        ut_buf_puts(b, "| Time | UTC | Tier | Targets | Reason |\n|---|---|---|---|---|\n");
    json_array_foreach(json_object_get(m, "escalations"), i, r)
    {
        when(b, r);
        ut_buf_printf(b, "%lld | ", pr_int(r, "tier", 0));
        size_t j;
        json_t *t;
        json_array_foreach(json_object_get(r, "targets"), j, t)
        {
            ut_buf_puts(b, j ? ", " : "");
            md(b, json_string_value(t));
        }
        ut_buf_puts(b, " | ");
        md(b, str(r, "reason"));
        ut_buf_puts(b, " |\n");
    }
    ut_buf_puts(b, "\n## Notifications\n\n");
    if (!json_array_size(json_object_get(m, "notifications")))
        ut_buf_puts(b, "None.\n");
    else
        ut_buf_puts(b, "| Time | UTC | Target | Kind | Status | Message |\n|---|---|---|---|---|---|\n");
    json_array_foreach(json_object_get(m, "notifications"), i, r)
    {
        when(b, r);
        md(b, str(r, "target"));
        ut_buf_puts(b, " | ");
        md(b, str(r, "kind"));
        ut_buf_printf(b, " | %s%s", str(r, "status") ? str(r, "status") : "?",
                      json_is_true(json_object_get(r, "simulated")) ? " (simulated)" : "");
        if (str(r, "error")) {
            ut_buf_puts(b, ": ");
            md(b, str(r, "error"));
        }
        ut_buf_puts(b, " | ");
        md(b, str(r, "message"));
        ut_buf_puts(b, " |\n");
    }
    ut_buf_puts(b, "\n## Evidence (chain of custody)\n\n");
    if (!json_array_size(json_object_get(m, "evidence")))
        ut_buf_puts(b, "No artifact stored.\n");
    else
        ut_buf_puts(b, "| Time | UTC | Step | Name | SHA-256 | Bytes | Path |\n|---|---|---|---|---|---|---|\n");
    json_array_foreach(json_object_get(m, "evidence"), i, r)
    {
        when(b, r);
        md(b, str(r, "step"));
        ut_buf_puts(b, " | ");
        md(b, str(r, "name"));
        ut_buf_puts(b, " | ");
        md(b, str(r, "sha256"));
        ut_buf_printf(b, " | %lld | ", pr_int(r, "bytes", 0));
        md(b, str(r, "path"));
        ut_buf_puts(b, " |\n");
    }
}

static void timeline(ut_buf *b, json_t *m)
{
    ut_buf_puts(b, "\n## Timeline\n\n| Time | UTC | # | Step | What happened |\n|---|---|---|---|---|\n");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(m, "timeline"), i, r)
    {
        when(b, r);
        ut_buf_printf(b, "%lld%s | ", pr_int(r, "seq", 0), json_is_true(json_object_get(r, "unverified")) ? " ?" : "");
        md(b, str(r, "step") ? str(r, "step") : "");
        ut_buf_puts(b, " | ");
        md(b, str(r, "text"));
        ut_buf_puts(b, " |\n");
    }
}

static void scorecard(ut_buf *b, json_t *m)
{
    json_t *c = json_object_get(m, "scorecard");
    if (!json_is_object(c))
        return;
    ut_buf_puts(b, "\n## DRILL scorecard\n\n");
    char d[32];
    ut_buf_printf(b, "- status: %s; total simulated time %s\n", str(c, "status") ? str(c, "status") : "?",
                  rp_duration(pr_int(c, "total_sim_ms", -1), d));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "decisions"), i, v)
    {
        ut_buf_puts(b, "- decision ");
        md(b, str(v, "step"));
        ut_buf_printf(b, " (%s): ", str(v, "kind") ? str(v, "kind") : "?");
        md(b, str(v, "answer"));
        if (str(v, "note")) {
            ut_buf_puts(b, " - ");
            md(b, str(v, "note"));
        }
        const char *want = pr_str(json_object_get(json_object_get(c, "expected"), "decisions"), str(v, "step"));
        if (want) {
            ut_buf_puts(b, " (expected ");
            md(b, want);
            ut_buf_puts(b, ")");
        }
        ut_buf_puts(b, "\n");
    }
    static const char *const lists[][2] = {{"escalations", "escalation tiers fired"},
                                           {"escalations_missed", "escalation tiers expected that did not fire"},
                                           {"escalations_due_not_fired", "escalations due that did not fire"},
                                           {"skipped", "skipped"},
                                           {"failed", "failed"},
                                           {"mismatches", "unmet expectations"},
                                           {NULL, NULL}};
    for (int k = 0; lists[k][0]; k++) {
        json_t *l = json_object_get(c, lists[k][0]);
        if (!json_is_array(l))
            continue;
        ut_buf_printf(b, "- %s: ", lists[k][1]);
        if (!json_array_size(l))
            ut_buf_puts(b, "none");
        json_array_foreach(l, i, v)
        {
            char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            ut_buf_puts(b, i ? ", " : "");
            md(b, s ? s : json_string_value(v));
            free(s);
        }
        ut_buf_puts(b, "\n");
    }
    json_t *inj = json_object_get(c, "injects");
    if (json_is_object(inj))
        ut_buf_printf(b, "- injects shown: %lld of %lld\n", pr_int(inj, "shown", 0), pr_int(inj, "total", 0));
    if (str(c, "verdict")) {
        ut_buf_puts(b, "- verdict: **");
        md(b, str(c, "verdict"));
        ut_buf_puts(b, "**\n");
    }
}

char *rp_render_md(json_t *m)
{
    ut_buf b = {0};
    header(&b, m);
    integrity(&b, m);
    metrics(&b, m);
    tables(&b, m);
    scorecard(&b, m);
    timeline(&b, m);
    ut_buf_printf(&b, "\nReport made by irp %s from the journal only.\n", IRP_VERSION);
    return b.data;
}
