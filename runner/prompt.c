/*
 * prompt.c — the operator's answers to manual steps and approvals. At any
 * prompt "note: text" journals an operator note and asks again; "?" shows
 * the choices; in a drill "pause" stops the drill clock until "resume"
 * (the facilitator's pause, eng_pause). With --yes every manual step is answered "done" and every
 * approval "granted", journaled as such. In a drill a scripted answer
 * (the scenario's, through fx_ops.scripted) comes before both.
 */
#include "engine.h"
#include "term.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Splits "word: note" into a lower-cased word and a note (may be NULL). */
static void split_answer(char *line, char **word, char **note)
{
    char *colon = strchr(line, ':');
    *note = NULL;
    if (colon) {
        *colon = '\0';
        char *n = colon + 1;
        while (*n == ' ')
            n++;
        if (*n)
            *note = n;
    }
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    for (char *p = line; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    *word = line;
}

static int one_of(const char *word, const char *const *choices)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(word, choices[i]) == 0)
            return 1;
    return 0;
}

/* The scripted answer to this prompt, matched against groups: the group's
 * index with *note set, -1 when there is none (or it fits no group), -2
 * when a signal stopped the run while the players took their time. */
static int scripted_choice(eng_run *r, const char *step, const char *kind, const char *const *const *groups,
                           char **note_out)
{
    char *text = r->fx->scripted ? r->fx->scripted(r, step, kind) : NULL;
    if (!text)
        return r->interrupted ? -2 : -1;
    char *word, *note;
    split_answer(text, &word, &note);
    int found = -1;
    for (int g = 0; groups[g] && found < 0; g++)
        if (one_of(word, groups[g]))
            found = g;
    if (found >= 0) {
        *note_out = note ? ut_xstrdup(note) : NULL;
        tm_line(TM_CYAN, "      scripted answer: %s%s%s", word, note ? ": " : "", note ? note : "");
        r->answer_via = "scenario";
    }
    free(text);
    return found;
}

int eng_pause(eng_run *r, const char *step)
{
    if (!r->opt->drill) {
        tm_line(TM_YELLOW, "      there is no pause in a live run: the incident's clock keeps running "
                           "(this step waits for your answer anyway)");
        return 0;
    }
    if (r->paused_since_mono)
        return 0;
    r->paused_since_mono = ut_mono_ms();
    char at[32];
    ut_format_duration(eng_clock_ms(r), at, sizeof at);
    eng_record(r, "drill.paused", step, r->operator_name, json_pack("{s:s}", "by", "facilitator"));
    tm_line(TM_MAGENTA, "  ==[PAUSED]== the drill clock stopped at T+%s: injects, timers and escalation wait", at);
    int rc = 0;
    for (;;) {
        char *line = NULL;
        rc = tm_prompt(r->loop, "      paused: 'resume' to go on, 'note: text' to record a note >", &line,
                       &r->interrupted);
        if (rc < 0)
            break;
        char *word, *note;
        split_answer(line, &word, &note);
        if (!strcmp(word, "note") && note) {
            json_t *data = json_pack("{s:s}", "note", note);
            eng_mark_cut(data, tm_last_cut());
            eng_record(r, "operator.note", step, r->operator_name, data);
            tm_line(TM_DIM, "      noted.");
        } else if (!strcmp(word, "resume") || !strcmp(word, "r") || !strcmp(word, "continue")) {
            free(line);
            break;
        } else
            tm_line(TM_YELLOW, "      the drill is paused: type resume (or 'note: text')");
        free(line);
    }
    int64_t paused = ut_mono_ms() - r->paused_since_mono;
    r->paused_total_ms += paused;
    r->paused_since_mono = 0;
    /* Recorded even when the input ended: the record says how long the clock stood. */
    eng_record(r, "drill.resumed", step, r->operator_name,
               json_pack("{s:I, s:s}", "paused_ms", (json_int_t)paused, "how",
                         rc == 0 ? "resume" : rc == -1 ? "input ended" : "interrupted"));
    if (rc == 0) {
        char d[32];
        ut_format_duration(paused, d, sizeof d);
        tm_line(TM_MAGENTA, "  ==[RESUMED]== after %s; the drill clock runs again from T+%s", d, at);
    }
    return rc;
}

/* Reads answers until one is understood. Returns the index of the matched
 * group, -1 at end of input, -2 when interrupted. */
static int read_choice(eng_run *r, const char *step, const char *prompt, const char *const *const *groups,
                       const char *help, char **note_out)
{
    for (;;) {
        char *line = NULL;
        int rc = tm_prompt(r->loop, prompt, &line, &r->interrupted);
        if (rc < 0)
            return rc;
        char *word, *note;
        split_answer(line, &word, &note);
        if (strcmp(word, "pause") == 0) {
            free(line);
            int p = eng_pause(r, step);
            if (p < 0)
                return p;
            continue;
        }
        if (strcmp(word, "note") == 0) {
            if (note) {
                json_t *data = json_pack("{s:s}", "note", note);
                eng_mark_cut(data, tm_last_cut());
                eng_record(r, "operator.note", step, r->operator_name, data);
            }
            tm_line(TM_DIM, "      noted.");
            free(line);
            continue;
        }
        for (int g = 0; groups[g]; g++)
            if (one_of(word, groups[g])) {
                *note_out = note ? ut_xstrdup(note) : NULL;
                r->answer_cut = tm_last_cut();
                free(line);
                return g;
            }
        tm_line(TM_YELLOW, "      %s%s%s", *word ? "did not understand '" : "", *word ? word : "",
                *word ? "'. " : "");
        tm_line(TM_YELLOW, "      %s", help);
        free(line);
    }
}

void eng_mark_cut(json_t *data, size_t full_len)
{
    if (!full_len)
        return;
    json_object_set_new(data, "truncated", json_true());
    json_object_set_new(data, "original_bytes", json_integer((json_int_t)full_len));
}

eng_answer eng_ask_manual(eng_run *r, const char *step, char **note)
{
    *note = NULL;
    r->answer_cut = 0;
    static const char *const done[] = {"done", "d", "ok", "yes", "y", NULL};
    static const char *const failed[] = {"failed", "fail", "f", NULL};
    static const char *const skip[] = {"skip", "s", NULL};
    static const char *const *const groups[] = {done, failed, skip, NULL};
    int s = scripted_choice(r, step, "manual", groups, note);
    if (s == -2)
        return ANSWER_STOPPED;
    if (s >= 0)
        return s == 0 ? ANSWER_DONE : s == 1 ? ANSWER_FAILED : ANSWER_SKIP;
    r->answer_via = r->opt->yes ? "--yes" : "operator";
    if (r->opt->yes) {
        tm_line(TM_DIM, "      answered done (--yes)");
        return ANSWER_DONE;
    }
    int g = read_choice(r, step, "      done / failed / skip (\": note\" to add a note) >", groups,
                        "answer done, failed or skip, optionally followed by ': a note'; 'note: text' "
                        "records a note",
                        note);
    if (g == -1)
        return ANSWER_EOF;
    if (g == -2)
        return ANSWER_STOPPED;
    return g == 0 ? ANSWER_DONE : g == 1 ? ANSWER_FAILED : ANSWER_SKIP;
}

int eng_ask_approval(eng_run *r, const char *step, const char *role, char **note)
{
    *note = NULL;
    r->answer_cut = 0;
    static const char *const approve[] = {"approve", "approved", "a", "yes", "y", "grant", NULL};
    static const char *const deny[] = {"deny", "denied", "no", "n", "reject", NULL};
    static const char *const *const groups[] = {approve, deny, NULL};
    int s = scripted_choice(r, step, "approval", groups, note);
    if (s == -2)
        return -2;
    if (s >= 0)
        return s == 0 ? 1 : 0;
    r->answer_via = r->opt->yes ? "--yes" : "operator";
    if (r->opt->yes) {
        tm_line(TM_DIM, "      approval granted (--yes)");
        return 1;
    }
    char *prompt = ut_xasprintf("      approval needed from %s: approve / deny >", role);
    int g = read_choice(r, step, prompt, groups,
                        "answer approve or deny, optionally followed by ': a note' (who approved, why)",
                        note);
    free(prompt);
    if (g < 0)
        return g;
    return g == 0 ? 1 : 0;
}
