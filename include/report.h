/*
 * report.h — `irp report`: a run's journal turned into the report the
 * incident commander and the exercise facilitator read afterwards. It only
 * reads: rp_load reads the journal (what can be read of a damaged one),
 * verifies its hash chain with the journal's own walk (jr_verify_file) and
 * builds one model, a jansson object (report.c: header, integrity, metrics,
 * phases, objectives; report_events.c: timeline, decisions, escalations,
 * notifications, evidence). The renderers turn the model into Markdown
 * (report_md.c), one self-contained HTML page with the timeline as inline
 * SVG (report_html.c, report_svg.c) or JSON. Nothing is added that is not in
 * the journal (already redacted).
 * Prefix rp_. Depends on: jansson, journal.h, util.h.
 */
#ifndef IRP_REPORT_H
#define IRP_REPORT_H

#include "util.h"

#include <jansson.h>

/* Reads and verifies the journal at path and builds the model. running is
 * the pid holding the run's lock (0: none). NULL when the journal cannot be
 * read at all (missing, unreadable, no record), with err. A journal that
 * fails verification still gives a model: model.integrity.intact is false
 * and says where. */
json_t *rp_load(const char *path, long running, char *err, size_t err_size);

/* The model of records (an array of journal records, in order). integrity
 * is stolen and stored as model.integrity (NULL: unknown). Pure: for tests. */
json_t *rp_build(json_t *records, json_t *integrity, long running);

/* report_events.c: fills model.timeline, .decisions, .escalations,
 * .notifications and .evidence from records. t_of gives a record's time
 * in ms since the start of the run on the run's clock. */
void rp_events(json_t *model, json_t *records, long long (*t_of)(json_t *rec, void *ctx), void *ctx);

/* report_header.c: the header's rows, [label, value or null], in order. */
json_t *rp_header_rows(json_t *model);

/* Renderings: malloc'd, NUL-terminated. */
char *rp_render_md(json_t *model);
char *rp_render_html(json_t *model);
/* ascii: escape every non-ASCII character (output to a terminal). */
char *rp_render_json(json_t *model, int ascii);

/* report_svg.c: the timeline as an inline <svg> (phases as bands on a time
 * axis, events as marks) appended to b. */
void rp_svg(ut_buf *b, json_t *model);

/* Text helpers shared by the renderers. */
/* s HTML-escaped (& < > " ') with control characters shown in caret
 * notation (ut_term_safe), appended to b. NULL appends nothing. */
void rp_html_text(ut_buf *b, const char *s);
/* "4m05s", "850ms"; "-" for a negative (unknown) value. */
const char *rp_duration(long long ms, char out[32]);
/* Milliseconds since the epoch of an RFC 3339 UTC time as the journal
 * writes it ("2026-11-25T09:13:44.123Z"); -1 when it is not one. */
long long rp_parse_ts(const char *ts);

#endif
