/*
 * notify_payload.c — the body of each notifier kind, built with jansson
 * from a stored outbox entry (see notify_internal.h for its shape):
 *   webhook    {type, timestamp, data} (Standard Webhooks' payload shape)
 *   slack      incoming webhook: text (the fallback) plus blocks
 *   teams      the Workflows envelope {"type":"message","attachments":[
 *              {"contentType":"application/vnd.microsoft.card.adaptive",
 *               "content":<Adaptive Card 1.4>}]}
 *   pagerduty  Events API v2: routing_key, event_action, dedup_key and,
 *              for triggers, payload{summary, source, severity, timestamp,
 *              component, group, class, custom_details}
 *   opsgenie   Alert API v2: create {message, alias, description, tags,
 *              details, entity, source, priority}; acknowledge and close
 *              {source, user, note}
 * Every kind carries run id, playbook, step, phase, severity, status and
 * operator, and a drill is marked DRILL wherever a person will read it.
 * Depends on: jansson, util.h.
 */
#include "notify_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRILL_MARK "[DRILL] "
#define SLACK_HEADER_MAX 150     /* plain_text header block limit */
#define SLACK_SECTION_MAX 3000   /* section text limit */
#define SLACK_FIELD_MAX 2000
#define PD_SUMMARY_MAX 1024
#define OG_MESSAGE_MAX 130
#define OG_DESCRIPTION_MAX 15000
#define OG_DETAIL_MAX 8000

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : NULL;
}

static const json_t *message_of(const json_t *entry)
{
    return json_object_get(entry, "message");
}

static int is_drill(const json_t *msg)
{
    return json_is_true(json_object_get(msg, "drill"));
}

char *nt_truncate_utf8(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n <= max)
        return ut_xstrdup(text);
    size_t cut = ut_utf8_cut(text, n, max >= 3 ? max - 3 : 0);
    char *out = ut_xmalloc(cut + 4);
    memcpy(out, text, cut);
    memcpy(out + cut, max >= 3 ? "..." : "", max >= 3 ? 4 : 1);
    return out;
}

char *nt_summary(const json_t *msg)
{
    const char *text = str(msg, "text");
    if (!text)
        text = "(no text)";
    while (!strncmp(text, DRILL_MARK, strlen(DRILL_MARK)))
        text += strlen(DRILL_MARK);
    return ut_xasprintf("%s%s", is_drill(msg) ? DRILL_MARK : "", text);
}

char *nt_headline(const json_t *msg)
{
    const char *event = str(msg, "event");
    const char *title = str(msg, "title") ? str(msg, "title") : str(msg, "playbook");
    const char *mark = is_drill(msg) ? DRILL_MARK : "";
    json_int_t tier = json_integer_value(json_object_get(msg, "tier"));
    if (event && !strcmp(event, "test"))
        return ut_xasprintf("%sirp test notification", mark);
    if (event && !strcmp(event, "escalation") && tier > 0)
        return ut_xasprintf("%sEscalation tier %lld: %s", mark, (long long)tier, title ? title : "incident");
    if (event && !strcmp(event, "escalation"))
        return ut_xasprintf("%sEscalation: %s", mark, title ? title : "incident");
    return ut_xasprintf("%s%s", mark, title ? title : "irp notification");
}

static void add_fact(json_t *facts, const char *label, const char *value)
{
    if (value && *value)
        json_array_append_new(facts, json_pack("[s, s]", label, value));
}

json_t *nt_facts(const json_t *msg)
{
    json_t *facts = json_array();
    add_fact(facts, "Run", str(msg, "run_id"));
    add_fact(facts, "Playbook", str(msg, "playbook"));
    add_fact(facts, "Step", str(msg, "step"));
    add_fact(facts, "Phase", str(msg, "phase"));
    add_fact(facts, "Severity", str(msg, "severity"));
    add_fact(facts, "Status", str(msg, "status"));
    add_fact(facts, "Operator", str(msg, "operator"));
    json_int_t tier = json_integer_value(json_object_get(msg, "tier"));
    if (tier > 0) {
        char t[24];
        snprintf(t, sizeof t, "%lld", (long long)tier);
        add_fact(facts, "Tier", t);
    }
    if (is_drill(msg))
        add_fact(facts, "Drill", "yes: an exercise, not a real incident");
    return facts;
}

char *nt_dedup_key(const json_t *entry)
{
    const char *run = str(message_of(entry), "run_id");
    if (!run)
        run = str(entry, "run");
    return ut_xasprintf("irp-%s", run ? run : "unknown");
}

/* Extra fields given by the playbook, as text (strings stay, other values
 * become compact JSON). */
static char *field_text(const json_t *v)
{
    if (json_is_string(v))
        return ut_xstrdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : ut_xstrdup("?");
}

/* ------------------------------------------------------------- webhook */

json_t *nt_payload_webhook(const json_t *entry)
{
    const json_t *msg = message_of(entry);
    const char *event = str(msg, "event") ? str(msg, "event") : "notify";
    char *type = ut_xasprintf("irp.%s", event);
    json_t *data = json_object();
    static const char *const keys[] = {"run_id", "playbook", "title", "step", "phase", "severity",
                                       "status", "operator", NULL};
    for (int i = 0; keys[i]; i++)
        json_object_set_new(data, keys[i], str(msg, keys[i]) ? json_string(str(msg, keys[i])) : json_null());
    json_object_set_new(data, "tier", json_integer(json_integer_value(json_object_get(msg, "tier"))));
    json_object_set_new(data, "text", json_string(str(msg, "text") ? str(msg, "text") : ""));
    json_object_set_new(data, "drill", json_boolean(is_drill(msg)));
    json_object_set_new(data, "target", json_string(str(entry, "target") ? str(entry, "target") : ""));
    const json_t *fields = json_object_get(msg, "fields");
    json_object_set_new(data, "fields", json_is_object(fields) ? json_deep_copy(fields) : json_object());
    json_t *body = json_pack("{s:s, s:s, s:o}", "type", type, "timestamp",
                             str(entry, "created") ? str(entry, "created") : "", "data", data);
    free(type);
    return body;
}

/* --------------------------------------------------------------- slack */

char *nt_slack_escape(const char *text)
{
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    for (const char *p = text; *p; p++) {
        if (*p == '&')
            ut_buf_puts(&b, "&amp;");
        else if (*p == '<')
            ut_buf_puts(&b, "&lt;");
        else if (*p == '>')
            ut_buf_puts(&b, "&gt;");
        else
            ut_buf_append(&b, p, 1);
    }
    return b.data;
}

static json_t *mrkdwn(const char *text, size_t max)
{
    char *esc = nt_slack_escape(text);
    char *cut = nt_truncate_utf8(esc, max);
    json_t *o = json_pack("{s:s, s:s}", "type", "mrkdwn", "text", cut);
    free(esc);
    free(cut);
    return o;
}

json_t *nt_payload_slack(const json_t *entry)
{
    const json_t *msg = message_of(entry);
    char *summary = nt_summary(msg);
    char *headline = nt_headline(msg);
    char *head = nt_truncate_utf8(headline, SLACK_HEADER_MAX);
    char *fallback = nt_slack_escape(summary);
    json_t *blocks = json_array();
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "header", "text", "type", "plain_text",
                                            "text", head));
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(summary, SLACK_SECTION_MAX)));
    json_t *facts = nt_facts(msg), *fields = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(facts, i, f)
    {
        if (json_array_size(fields) == 10)
            break; /* Slack allows ten fields in a section */
        char *t = ut_xasprintf("*%s*\n%s", json_string_value(json_array_get(f, 0)), json_string_value(json_array_get(f, 1)));
        json_array_append_new(fields, mrkdwn(t, SLACK_FIELD_MAX));
        free(t);
    }
    json_decref(facts);
    if (json_array_size(fields))
        json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
    else
        json_decref(fields);
    const json_t *extra = json_object_get(msg, "fields");
    if (json_is_object(extra) && json_object_size(extra)) {
        ut_buf b = {0};
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)extra, k, v)
        {
            char *vt = field_text(v);
            ut_buf_printf(&b, "%s*%s*: %s", b.len ? "\n" : "", k, vt);
            free(vt);
        }
        json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(b.data, SLACK_SECTION_MAX)));
        ut_buf_free(&b);
    }
    json_array_append_new(blocks, json_pack("{s:s, s:[o]}", "type", "context", "elements",
                                            mrkdwn(is_drill(msg) ? "irp | DRILL: an exercise, not a real incident"
                                                                 : "irp incident-response runner",
                                                   SLACK_FIELD_MAX)));
    json_t *body = json_pack("{s:s, s:o}", "text", fallback, "blocks", blocks);
    free(summary);
    free(headline);
    free(head);
    free(fallback);
    return body;
}

/* --------------------------------------------------------------- teams */

json_t *nt_payload_teams(const json_t *entry)
{
    const json_t *msg = message_of(entry);
    char *summary = nt_summary(msg);
    char *headline = nt_headline(msg);
    json_t *body = json_array();
    if (is_drill(msg))
        json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "TextBlock", "text",
                                               "DRILL: an exercise, not a real incident", "weight", "Bolder", "color",
                                               "Warning", "wrap", 1));
    json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "type", "TextBlock", "text", headline,
                                           "size", "Large", "weight", "Bolder", "style", "heading", "wrap", 1));
    json_array_append_new(body, json_pack("{s:s, s:s, s:b}", "type", "TextBlock", "text", summary, "wrap", 1));
    json_t *facts = nt_facts(msg), *fs = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(facts, i, f) json_array_append_new(fs, json_pack("{s:O, s:O}", "title", json_array_get(f, 0),
                                                                        "value", json_array_get(f, 1)));
    const json_t *extra = json_object_get(msg, "fields");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)extra, k, v)
    {
        char *vt = field_text(v);
        json_array_append_new(fs, json_pack("{s:s, s:s}", "title", k, "value", vt));
        free(vt);
    }
    json_decref(facts);
    json_array_append_new(body, json_pack("{s:s, s:o}", "type", "FactSet", "facts", fs));
    json_t *card = json_pack("{s:s, s:s, s:s, s:{s:s}, s:o}", "$schema", "http://adaptivecards.io/schemas/adaptive-card.json",
                             "type", "AdaptiveCard", "version", "1.4", "msteams", "width", "Full", "body", body);
    json_t *envelope = json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
                                 "application/vnd.microsoft.card.adaptive", "contentUrl", "content", card);
    free(summary);
    free(headline);
    return envelope;
}

/* ----------------------------------------------------------- pagerduty */

const char *nt_pd_severity(const char *severity)
{
    if (!severity)
        return "error";
    if (!strcmp(severity, "critical"))
        return "critical";
    if (!strcmp(severity, "high"))
        return "error";
    if (!strcmp(severity, "medium"))
        return "warning";
    return "info"; /* low, info */
}

static json_t *custom_details(const json_t *msg)
{
    json_t *d = json_object();
    static const char *const keys[] = {"run_id", "playbook", "title", "step", "phase", "severity",
                                       "status", "operator", "event", "text", NULL};
    for (int i = 0; keys[i]; i++)
        if (str(msg, keys[i]))
            json_object_set_new(d, keys[i], json_string(str(msg, keys[i])));
    json_int_t tier = json_integer_value(json_object_get(msg, "tier"));
    if (tier > 0)
        json_object_set_new(d, "tier", json_integer(tier));
    json_object_set_new(d, "drill", json_boolean(is_drill(msg)));
    const json_t *fields = json_object_get(msg, "fields");
    if (json_is_object(fields) && json_object_size(fields))
        json_object_set_new(d, "fields", json_deep_copy(fields));
    return d;
}

json_t *nt_payload_pagerduty(const json_t *entry, const char *routing_key, const char *source)
{
    const json_t *msg = message_of(entry);
    const char *action = str(entry, "action") ? str(entry, "action") : "trigger";
    char *dedup = nt_dedup_key(entry);
    json_t *body = json_pack("{s:s, s:s, s:s}", "routing_key", routing_key, "event_action", action, "dedup_key", dedup);
    free(dedup);
    if (strcmp(action, "trigger") != 0)
        return body; /* acknowledge and resolve carry only the key */
    char host[256] = "irp";
    if (!source && gethostname(host, sizeof host - 1) == 0)
        host[sizeof host - 1] = '\0';
    char *summary = nt_summary(msg);
    char *cut = nt_truncate_utf8(summary, PD_SUMMARY_MAX);
    const char *step = str(msg, "step"), *playbook = str(msg, "playbook");
    json_t *payload = json_pack("{s:s, s:s, s:s, s:s}", "summary", cut, "source", source ? source : host, "severity",
                                nt_pd_severity(str(msg, "severity")), "timestamp",
                                str(entry, "created") ? str(entry, "created") : "");
    if (step || playbook)
        json_object_set_new(payload, "component", json_string(step ? step : playbook));
    if (playbook)
        json_object_set_new(payload, "group", json_string(playbook));
    const char *cls = str(msg, "phase") ? str(msg, "phase") : str(msg, "event");
    if (cls)
        json_object_set_new(payload, "class", json_string(cls));
    json_object_set_new(payload, "custom_details", custom_details(msg));
    json_object_set_new(body, "payload", payload);
    json_object_set_new(body, "client", json_string("irp"));
    free(summary);
    free(cut);
    return body;
}

/* ------------------------------------------------------------ opsgenie */

const char *nt_og_priority(const char *severity)
{
    if (!severity)
        return "P3";
    if (!strcmp(severity, "critical"))
        return "P1";
    if (!strcmp(severity, "high"))
        return "P2";
    if (!strcmp(severity, "medium"))
        return "P3";
    if (!strcmp(severity, "low"))
        return "P4";
    return "P5";
}

json_t *nt_payload_opsgenie(const json_t *entry)
{
    const json_t *msg = message_of(entry);
    const char *action = str(entry, "action") ? str(entry, "action") : "trigger";
    const char *op = str(msg, "operator") ? str(msg, "operator") : "irp";
    if (strcmp(action, "trigger") != 0) {
        char *note = ut_xasprintf("%s by irp (run %s)", !strcmp(action, "resolve") ? "Resolved" : "Acknowledged",
                                  str(msg, "run_id") ? str(msg, "run_id") : "?");
        json_t *b = json_pack("{s:s, s:s, s:s}", "source", "irp", "user", op, "note", note);
        free(note);
        return b;
    }
    char *summary = nt_summary(msg);
    char *message = nt_truncate_utf8(summary, OG_MESSAGE_MAX);
    char *alias = nt_dedup_key(entry);
    ut_buf desc = {0};
    ut_buf_puts(&desc, summary);
    json_t *facts = nt_facts(msg), *details = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(facts, i, f)
    {
        const char *label = json_string_value(json_array_get(f, 0)), *value = json_string_value(json_array_get(f, 1));
        ut_buf_printf(&desc, "\n%s: %s", label, value);
        char *cut = nt_truncate_utf8(value, OG_DETAIL_MAX);
        json_object_set_new(details, label, json_string(cut));
        free(cut);
    }
    json_decref(facts);
    const json_t *extra = json_object_get(msg, "fields");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)extra, k, v)
    {
        char *vt = field_text(v), *cut = nt_truncate_utf8(vt, OG_DETAIL_MAX);
        json_object_set_new(details, k, json_string(cut));
        free(vt);
        free(cut);
    }
    char *description = nt_truncate_utf8(desc.data, OG_DESCRIPTION_MAX);
    ut_buf_free(&desc);
    json_t *tags = json_array();
    json_array_append_new(tags, json_string("irp"));
    if (str(msg, "severity")) {
        char *t = ut_xasprintf("severity:%s", str(msg, "severity"));
        char *cut = nt_truncate_utf8(t, 50);
        json_array_append_new(tags, json_string(cut));
        free(t);
        free(cut);
    }
    if (is_drill(msg))
        json_array_append_new(tags, json_string("drill"));
    const char *playbook = str(msg, "playbook");
    json_t *body = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s}", "message", message, "alias", alias,
                             "description", description, "tags", tags, "details", details, "entity",
                             playbook ? playbook : "irp", "source", "irp", "priority",
                             nt_og_priority(str(msg, "severity")), "user", op);
    free(summary);
    free(message);
    free(alias);
    free(description);
    return body;
}
