/*
 * report_svg.c — the report's timeline as one inline SVG: a time axis on
 * the run's clock, the phases as coloured bands, and every event as a mark
 * on its lane (steps, decisions, escalations, notifications, evidence,
 * injects). Each mark carries a <title> (the browser's tooltip: no
 * JavaScript). Every journal string is HTML-escaped (rp_html_text).
 * Depends on: jansson, report.h, proto.h, util.h.
 */
#include "report.h"
#include "proto.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define SVG_W 1080
#define LEFT 120 /* lane labels */
#define RIGHT 20
#define TOP 46   /* phase labels above the bands, in up to 3 rows */
#define LANE_H 26

static const char *const lanes[][2] = {{"steps", "#4a6fa5"},         {"failures", "#c0392b"},
                                       {"decisions", "#8e44ad"},      {"escalations", "#d35400"},
                                       {"notifications", "#16a085"}, {"evidence", "#2c3e50"},
                                       {"injects", "#b7950b"},        {NULL, NULL}};
static const char *const band_colors[] = {"#dce6f2", "#f6e3d4", "#e2f0d9", "#efe0f3", "#fbf3d5", "#dff0f0"};

/* The lane of a record type, or -1 (not drawn). */
static int lane_of(const char *type)
{
    if (!type)
        return -1;
    if (!strcmp(type, "step.failed") || !strcmp(type, "step.retried"))
        return 1;
    if (!strncmp(type, "step.", 5) || !strncmp(type, "run.", 4))
        return !strcmp(type, "step.log") ? -1 : 0;
    if (!strncmp(type, "approval.", 9) || !strcmp(type, "manual.answered") || !strncmp(type, "operator.", 9) ||
        !strcmp(type, "resume.decision"))
        return 2;
    if (!strcmp(type, "escalation.triggered"))
        return 3;
    if (!strncmp(type, "notify.", 7))
        return 4;
    if (!strcmp(type, "artifact.stored"))
        return 5;
    if (!strcmp(type, "inject.shown"))
        return 6;
    return -1;
}

static double x_of(long long t, long long total)
{
    if (t < 0)
        t = 0;
    return LEFT + (double)t * (SVG_W - LEFT - RIGHT) / (double)total;
}

/* A tick spacing that gives 4..10 ticks over total ms. */
static long long tick_step(long long total)
{
    static const long long steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000,
                                      60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000,
                                      10800000, 21600000, 43200000, 86400000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (total / steps[i] <= 10)
            return steps[i];
    return total / 8;
}

void rp_svg(ut_buf *b, json_t *m)
{
    json_t *timeline = json_object_get(m, "timeline");
    long long total = pr_int(m, "elapsed_ms", 0);
    size_t i;
    json_t *ev;
    json_array_foreach(timeline, i, ev) if (pr_int(ev, "t_ms", 0) > total) total = pr_int(ev, "t_ms", 0);
    if (total <= 0)
        total = 1;
    int nlanes = 0;
    while (lanes[nlanes][0])
        nlanes++;
    int h = TOP + nlanes * LANE_H + 30;
    ut_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"%d\" height=\"%d\" "
                     "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
                  SVG_W, h, SVG_W, h);
    ut_buf_puts(b, "<title>Timeline of the run: phases and events</title>\n");
    /* Phase bands behind everything. */
    double row_end[3] = {0, 0, 0};
    json_array_foreach(json_object_get(m, "phases"), i, ev)
    {
        long long start = pr_int(ev, "start_ms", 0);
        long long end = json_is_integer(json_object_get(ev, "end_ms")) ? pr_int(ev, "end_ms", start) : total;
        double x0 = x_of(start, total), x1 = x_of(end, total);
        if (x1 - x0 < 2)
            x1 = x0 + 2;
        ut_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", x0, TOP - 4,
                      x1 - x0, nlanes * LANE_H + 4, band_colors[i % 6]);
        char d[32];
        rp_html_text(b, pr_str(ev, "phase"));
        ut_buf_printf(b, ": %s</title></rect>\n", rp_duration(pr_int(ev, "duration_ms", -1), d));
        /* The first label row where it does not run into the previous label. */
        int row = 0;
        while (row < 2 && x0 < row_end[row])
            row++;
        double w = 7.0 * (double)strlen(pr_str(ev, "phase") ? pr_str(ev, "phase") : "") + 8;
        row_end[row] = x0 + w;
        int at_end = x0 + w > SVG_W; /* near the right edge: end the label there */
        ut_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-weight=\"bold\" fill=\"#333\"%s>",
                      at_end ? SVG_W - 2.0 : x0 + 2, TOP - 8 - row * 12, at_end ? " text-anchor=\"end\"" : "");
        rp_html_text(b, pr_str(ev, "phase"));
        ut_buf_puts(b, "</text>\n");
    }
    for (int l = 0; l < nlanes; l++) {
        int y = TOP + l * LANE_H;
        ut_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>\n", LEFT, y + LANE_H / 2,
                      SVG_W - RIGHT, y + LANE_H / 2);
        ut_buf_printf(b, "<text x=\"4\" y=\"%d\" fill=\"%s\">%s</text>\n", y + LANE_H / 2 + 4, lanes[l][1], lanes[l][0]);
    }
    /* The axis. */
    int ay = TOP + nlanes * LANE_H + 4;
    ut_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", LEFT, ay, SVG_W - RIGHT, ay);
    long long step = tick_step(total);
    for (long long t = 0; step > 0 && t <= total; t += step) {
        char d[32];
        double x = x_of(t, total);
        ut_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>"
                         "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#333\">T+%s</text>\n",
                      x, ay, x, ay + 4, x, ay + 16, rp_duration(t, d));
    }
    /* The marks. */
    json_array_foreach(timeline, i, ev)
    {
        int l = lane_of(pr_str(ev, "type"));
        if (l < 0)
            continue;
        long long t = pr_int(ev, "t_ms", 0);
        double x = x_of(t, total);
        int y = TOP + l * LANE_H;
        char d[32];
        ut_buf_printf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"3\" height=\"%d\" fill=\"%s\"%s><title>T+%s #%lld ", x - 1,
                      y + 5, LANE_H - 10, lanes[l][1],
                      json_is_true(json_object_get(ev, "unverified")) ? " opacity=\"0.4\"" : "", rp_duration(t, d),
                      pr_int(ev, "seq", 0));
        if (pr_str(ev, "step")) {
            rp_html_text(b, pr_str(ev, "step"));
            ut_buf_puts(b, ": ");
        }
        rp_html_text(b, pr_str(ev, "text"));
        ut_buf_puts(b, "</title></rect>\n");
    }
    ut_buf_puts(b, "</svg>\n");
}
