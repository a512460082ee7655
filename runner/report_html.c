/*
 * report_html.c — the report model as one self-contained HTML page: inline
 * CSS, the timeline as inline SVG (report_svg.c), no script, no external
 * resource, so it can be attached to a ticket or mailed and opened
 * offline. Every journal-derived string goes through rp_html_text (HTML
 * escaping, control characters in caret notation): a step title or a note
 * holding markup shows as text. Also the JSON rendering.
 * Depends on: jansson, report.h, proto.h, util.h.
 */
#include "report.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rp_html_text(ut_buf *b, const char *s)
{
    if (!s)
        return;
    char *safe = ut_term_safe(s, strlen(s), 1);
    for (const char *p = safe; *p; p++) {
        switch (*p) {
        case '&': ut_buf_puts(b, "&amp;"); break;
        case '<': ut_buf_puts(b, "&lt;"); break;
        case '>': ut_buf_puts(b, "&gt;"); break;
        case '"': ut_buf_puts(b, "&quot;"); break;
        case '\'': ut_buf_puts(b, "&#39;"); break;
        default: ut_buf_append(b, p, 1);
        }
    }
    free(safe);
}

static const char *str(json_t *o, const char *key)
{
    return pr_str(o, key);
}

static const char *const css =
    "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.4}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:2px;margin-top:1.6em}"
    "table{border-collapse:collapse;width:100%;font-size:.9em;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td{white-space:pre-wrap;overflow-wrap:break-word}td.nw{white-space:nowrap}"
    "table.kv th{width:180px}.mono{font-family:ui-monospace,monospace;font-size:.9em}"
    ".drill{background:#e67e22;color:#fff;font-size:1.4em;font-weight:bold;padding:10px 14px;margin:10px 0}"
    ".ok{background:#e8f6e8;border-left:6px solid #2e8b57;padding:8px 12px}"
    ".bad{background:#fdecea;border-left:6px solid #c0392b;padding:8px 12px;font-weight:bold}"
    ".met{color:#2e8b57;font-weight:bold}.breached{color:#c0392b;font-weight:bold}.open{color:#b7950b;font-weight:bold}"
    "tr.failed td{background:#fdecea}tr.esc td{background:#fdf2e9}tr.unverified td{color:#999}"
    ".svgwrap{overflow-x:auto;border:1px solid #ddd;padding:4px}footer{color:#777;font-size:.8em;margin-top:2em}";

/* A value as table text: a string as it is, a list joined with ", ",
 * null as nothing, anything else as compact JSON. malloc'd. */
static char *as_text(json_t *v)
{
    if (!v || json_is_null(v))
        return ut_xstrdup("");
    if (json_is_string(v))
        return ut_xstrdup(json_string_value(v));
    if (json_is_array(v)) {
        ut_buf b = {0};
        ut_buf_puts(&b, "");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char *t = as_text(e);
            ut_buf_printf(&b, "%s%s", i ? ", " : "", t);
            free(t);
        }
        return b.data;
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return s ? s : ut_xstrdup("?");
}

static void td(ut_buf *b, const char *s)
{
    ut_buf_puts(b, "<td>");
    rp_html_text(b, s);
    ut_buf_puts(b, "</td>");
}

static void td_t(ut_buf *b, json_t *o, const char *key)
{
    char d[32];
    json_t *v = json_object_get(o, key);
    ut_buf_printf(b, "<td class=\"nw\">%s%s</td>", json_is_integer(v) ? "T+" : "",
                  json_is_integer(v) ? rp_duration(json_integer_value(v), d) : "-");
}

static void td_when(ut_buf *b, json_t *r)
{
    td_t(b, r, "t_ms");
    const char *ts = str(r, "ts");
    ut_buf_printf(b, "<td class=\"mono nw\">%.8s</td>", ts && strlen(ts) >= 19 ? ts + 11 : "-");
}

static void kv(ut_buf *b, const char *key, const char *value)
{
    ut_buf_printf(b, "<tr><th>%s</th>", key);
    td(b, value ? value : "-");
    ut_buf_puts(b, "</tr>\n");
}

static void header(ut_buf *b, json_t *m)
{
    json_t *pb = json_object_get(m, "playbook");
    int drill = json_is_true(json_object_get(m, "drill"));
    ut_buf_printf(b, "<h1>%s", drill ? "DRILL REPORT: " : "Incident report: ");
    rp_html_text(b, str(pb, "title") ? str(pb, "title") : str(pb, "id"));
    ut_buf_puts(b, "</h1>\n");
    if (drill)
        ut_buf_puts(b, "<div class=\"drill\">DRILL &mdash; a tabletop exercise, not a real incident. Every command "
                       "and notification was simulated.</div>\n");
    ut_buf_puts(b, "<table class=\"kv\">\n");
    json_t *rows = rp_header_rows(m);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        kv(b, json_string_value(json_array_get(r, 0)), json_string_value(json_array_get(r, 1)));
    json_decref(rows);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(m, "inputs"), k, v)
    {
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        ut_buf_puts(b, "<tr><th>input ");
        rp_html_text(b, k);
        ut_buf_puts(b, "</th>");
        td(b, s ? s : json_string_value(v));
        ut_buf_puts(b, "</tr>\n");
        free(s);
    }
    ut_buf_puts(b, "</table>\n");
}

static void integrity(ut_buf *b, json_t *m)
{
    json_t *in = json_object_get(m, "integrity");
    ut_buf_puts(b, "<h2>Integrity</h2>\n");
    if (json_is_true(json_object_get(in, "intact"))) {
        ut_buf_printf(b, "<p class=\"ok mono\">journal verified: %lld records, head seq %lld sha256:", pr_int(in, "records", 0),
                      pr_int(in, "head_seq", 0));
        rp_html_text(b, str(in, "head"));
        ut_buf_puts(b, "</p>\n");
    } else {
        ut_buf_puts(b, "<p class=\"bad\">WARNING: THE JOURNAL FAILS VERIFICATION. It was changed or damaged after it "
                       "was written: ");
        rp_html_text(b, str(in, "problem"));
        ut_buf_printf(b, ". Records 1 to %lld verified; everything after them is shown as read, unverified (greyed "
                         "out).</p>\n",
                      pr_int(in, "verified_through", 0));
    }
    ut_buf_puts(b, "<p>Journal: <span class=\"mono\">");
    rp_html_text(b, str(in, "journal"));
    ut_buf_puts(b, "</span></p>\n");
}

static void metrics(ut_buf *b, json_t *m)
{
    json_t *mt = json_object_get(m, "metrics");
    char d[32];
    ut_buf_printf(b, "<h2>Metrics</h2>\n<p>From the start of the run, on the %s.</p>\n<table>\n"
                     "<tr><th>Metric</th><th>Time</th><th>Detail</th></tr>\n",
                  json_is_true(json_object_get(m, "drill")) ? "drill clock (simulated time)" : "wall clock");
    json_t *a = json_object_get(mt, "acknowledge");
    ut_buf_printf(b, "<tr><th>Time to acknowledge</th><td>%s</td>", json_is_object(a) ? rp_duration(pr_int(a, "ms", -1), d) : "-");
    char *ack = json_is_object(a) ? ut_xasprintf("first operator action: %s by %s%s%s, record %lld", str(a, "event"),
                                                 str(a, "by") ? str(a, "by") : "?", str(a, "step") ? " at step " : "",
                                                 str(a, "step") ? str(a, "step") : "", pr_int(a, "seq", 0))
                                  : NULL;
    td(b, ack ? ack : "no operator action on record");
    free(ack);
    json_t *c = json_object_get(mt, "contain");
    ut_buf_printf(b, "</tr>\n<tr><th>Time to contain</th><td>%s</td>", json_is_object(c) ? rp_duration(pr_int(c, "ms", -1), d) : "-");
    td(b, json_is_object(c) ? "end of the containment phase" : "not reached (no containment phase, or it is not finished)");
    json_t *r = json_object_get(mt, "resolve");
    ut_buf_printf(b, "</tr>\n<tr><th>Time to resolve</th><td>%s</td>", json_is_object(r) ? rp_duration(pr_int(r, "ms", -1), d) : "-");
    char *res = json_is_object(r) ? ut_xasprintf("run finished: %s", str(r, "status") ? str(r, "status") : "?") : NULL;
    td(b, res ? res : "the run has not finished");
    free(res);
    ut_buf_puts(b, "</tr>\n</table>\n");
    size_t i;
    json_t *o;
    if (json_array_size(json_object_get(m, "objectives")))
        ut_buf_puts(b, "<table><tr><th>Objective</th><th>About</th><th>Limit</th><th>Reached</th><th>Verdict</th></tr>\n");
    json_array_foreach(json_object_get(m, "objectives"), i, o)
    {
        const char *verdict = str(o, "verdict") ? str(o, "verdict") : "?";
        ut_buf_puts(b, "<tr>");
        td(b, str(o, "objective"));
        td(b, str(o, "phase") ? str(o, "phase") : "the whole run");
        ut_buf_printf(b, "<td>%s</td>", rp_duration(pr_int(o, "limit_ms", -1), d));
        td_t(b, o, "reached_ms");
        ut_buf_printf(b, "<td class=\"%s\">", !strcmp(verdict, "met") ? "met" : !strcmp(verdict, "breached") ? "breached" : "open");
        rp_html_text(b, !strcmp(verdict, "breached") ? "BREACHED" : verdict);
        ut_buf_puts(b, "</td></tr>\n");
    }
    if (json_array_size(json_object_get(m, "objectives")))
        ut_buf_puts(b, "</table>\n");
    if (json_array_size(json_object_get(m, "phases")))
        ut_buf_puts(b, "<table><tr><th>Phase</th><th>Start</th><th>End</th><th>Duration</th></tr>\n");
    json_array_foreach(json_object_get(m, "phases"), i, o)
    {
        ut_buf_puts(b, "<tr>");
        td(b, str(o, "phase"));
        td_t(b, o, "start_ms");
        if (json_is_integer(json_object_get(o, "end_ms")))
            td_t(b, o, "end_ms");
        else
            ut_buf_puts(b, "<td class=\"open\">open</td>");
        ut_buf_printf(b, "<td>%s</td></tr>\n", rp_duration(pr_int(o, "duration_ms", -1), d));
    }
    if (json_array_size(json_object_get(m, "phases")))
        ut_buf_puts(b, "</table>\n");
}

/* A table of rows with the time columns, then the string keys given. */
static void table(ut_buf *b, const char *title, json_t *rows, const char *const *heads, const char *const *keys,
                  const char *none)
{
    ut_buf_printf(b, "<h2>%s</h2>\n", title);
    if (!json_array_size(rows)) {
        ut_buf_printf(b, "<p>%s</p>\n", none);
        return;
    }
    ut_buf_puts(b, "<table><tr><th>Time</th><th>UTC</th>");
    for (int k = 0; heads[k]; k++)
        ut_buf_printf(b, "<th>%s</th>", heads[k]);
    ut_buf_puts(b, "</tr>\n");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        ut_buf_puts(b, "<tr>");
        td_when(b, r);
        for (int k = 0; keys[k]; k++) {
            char *s = as_text(json_object_get(r, keys[k]));
            ut_buf_printf(b, "<td%s>", !strcmp(keys[k], "sha256") || !strcmp(keys[k], "path") ? " class=\"mono\"" : "");
            rp_html_text(b, s);
            ut_buf_puts(b, "</td>");
            free(s);
        }
        ut_buf_puts(b, "</tr>\n");
    }
    ut_buf_puts(b, "</table>\n");
}

static void scorecard(ut_buf *b, json_t *m)
{
    json_t *c = json_object_get(m, "scorecard");
    if (!json_is_object(c))
        return;
    char d[32];
    ut_buf_printf(b, "<h2>DRILL scorecard</h2>\n<table class=\"kv\">\n");
    kv(b, "Status", str(c, "status"));
    kv(b, "Total simulated time", rp_duration(pr_int(c, "total_sim_ms", -1), d));
    static const char *const lists[][2] = {{"escalations", "Escalation tiers fired"},
                                           {"escalations_missed", "Expected tiers that did not fire"},
                                           {"escalations_due_not_fired", "Escalations due that did not fire"},
                                           {"skipped", "Skipped"},
                                           {"failed", "Failed"},
                                           {"mismatches", "Unmet expectations"},
                                           {NULL, NULL}};
    for (int k = 0; lists[k][0]; k++) {
        json_t *l = json_object_get(c, lists[k][0]);
        if (!json_is_array(l))
            continue;
        char *s = as_text(l);
        kv(b, lists[k][1], *s ? s : "none");
        free(s);
    }
    json_t *inj = json_object_get(c, "injects");
    if (json_is_object(inj)) {
        char *s = ut_xasprintf("%lld of %lld", pr_int(inj, "shown", 0), pr_int(inj, "total", 0));
        kv(b, "Injects shown", s);
        free(s);
    }
    kv(b, "Verdict", str(c, "verdict"));
    ut_buf_puts(b, "</table>\n<table><tr><th>Step</th><th>Kind</th><th>Answer</th><th>Via</th><th>Note</th>"
                   "<th>Expected</th></tr>\n");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "decisions"), i, v)
    {
        ut_buf_puts(b, "<tr>");
        td(b, str(v, "step"));
        td(b, str(v, "kind"));
        td(b, str(v, "answer"));
        td(b, str(v, "via"));
        td(b, str(v, "note"));
        td(b, pr_str(json_object_get(json_object_get(c, "expected"), "decisions"), str(v, "step")));
        ut_buf_puts(b, "</tr>\n");
    }
    ut_buf_puts(b, "</table>\n");
}

static void timeline(ut_buf *b, json_t *m)
{
    ut_buf_puts(b, "<h2>Timeline</h2>\n<div class=\"svgwrap\">\n");
    rp_svg(b, m);
    ut_buf_puts(b, "</div>\n<table><tr><th>Time</th><th>UTC</th><th>#</th><th>Step</th><th>What happened</th></tr>\n");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(m, "timeline"), i, r)
    {
        const char *t = str(r, "type") ? str(r, "type") : "";
        const char *cls = json_is_true(json_object_get(r, "unverified")) ? " class=\"unverified\""
                          : !strcmp(t, "step.failed") || !strcmp(t, "step.retried") || !strcmp(t, "notify.failed")
                              ? " class=\"failed\""
                          : !strcmp(t, "escalation.triggered") ? " class=\"esc\""
                                                               : "";
        ut_buf_printf(b, "<tr%s>", cls);
        td_when(b, r);
        ut_buf_printf(b, "<td>%lld%s</td>", pr_int(r, "seq", 0), *cls == ' ' && strstr(cls, "unverified") ? " ?" : "");
        td(b, str(r, "step"));
        td(b, str(r, "text"));
        ut_buf_puts(b, "</tr>\n");
    }
    ut_buf_puts(b, "</table>\n");
}

char *rp_render_html(json_t *m)
{
    ut_buf b = {0};
    json_t *pb = json_object_get(m, "playbook");
    ut_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    ut_buf_puts(&b, json_is_true(json_object_get(m, "drill")) ? "DRILL report: " : "Incident report: ");
    rp_html_text(&b, str(pb, "title"));
    ut_buf_puts(&b, " (run ");
    rp_html_text(&b, str(m, "run"));
    ut_buf_printf(&b, ")</title>\n<style>%s</style>\n</head>\n<body>\n", css);
    header(&b, m);
    integrity(&b, m);
    metrics(&b, m);
    static const char *const dh[] = {"Step", "Event", "Who", "Answer", "Via", "Role", "Note", NULL};
    static const char *const dk[] = {"step", "type", "actor", "answer", "via", "role", "note", NULL};
    table(&b, "Approvals and decisions", json_object_get(m, "decisions"), dh, dk, "None on record.");
    static const char *const eh[] = {"Tier", "Targets", "Reason", "Step", NULL};
    static const char *const ek[] = {"tier", "targets", "reason", "step", NULL};
    table(&b, "Escalations", json_object_get(m, "escalations"), eh, ek, "None.");
    static const char *const nh[] = {"Target", "Kind", "Status", "Attempts", "Error", "Message", NULL};
    static const char *const nk[] = {"target", "kind", "status", "attempts", "error", "message", NULL};
    table(&b, "Notifications", json_object_get(m, "notifications"), nh, nk, "None.");
    static const char *const vh[] = {"Step", "Name", "SHA-256", "Bytes", "Path", NULL};
    static const char *const vk[] = {"step", "name", "sha256", "bytes", "path", NULL};
    table(&b, "Evidence (chain of custody)", json_object_get(m, "evidence"), vh, vk, "No artifact stored.");
    scorecard(&b, m);
    timeline(&b, m);
    ut_buf_printf(&b, "<footer>Report made by irp %s from the journal only.</footer>\n</body>\n</html>\n", IRP_VERSION);
    return b.data;
}

char *rp_render_json(json_t *m, int ascii)
{
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER | (ascii ? JSON_ENSURE_ASCII : 0));
    if (!s)
        return NULL;
    char *out = ut_xasprintf("%s\n", s);
    free(s);
    return out;
}
