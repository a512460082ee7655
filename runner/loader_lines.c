/*
 * loader_lines.c — the line of a field inside a playbook file. Lua table
 * constructors keep no per-key lines, so a problem with field K of a
 * table built by `playbook {`, `step "id" {` or `attach {` at line L is
 * placed by reading the file's text: a small Lua tokenizer (comments,
 * short and long strings, brackets and block keywords) finds the DSL call
 * on line L, walks into its table along a path of keys ("inputs", "host",
 * "required"; "#2" for the second list item) and reports the line of the
 * deepest key found, or L. The file has already compiled, so the text is
 * valid Lua; nothing here runs or allocates.
 * Depends on: loader_internal.h.
 */
#include "loader_internal.h"

#include <stdlib.h>
#include <string.h>

enum { T_EOF, T_NAME, T_STRING, T_NUMBER, T_OP };

typedef struct {
    int kind;
    const char *s; /* name, string contents (between the delimiters) or operator */
    size_t n;
    int line;
} tok;

typedef struct {
    const char *p, *end;
    int line;
} lexer;

/* Consumes one character, counting \n, \r, \r\n and \n\r as one line. */
static void adv(lexer *x)
{
    char c = *x->p++;
    if (c == '\n' || c == '\r') {
        x->line++;
        if (x->p < x->end && (*x->p == '\n' || *x->p == '\r') && *x->p != c)
            x->p++;
    }
}

/* At "[", "[=", "[==" ... "[": the level (number of '='), else -1. */
static int long_open(const lexer *x)
{
    const char *q = x->p;
    if (q >= x->end || *q != '[')
        return -1;
    q++;
    int level = 0;
    while (q < x->end && *q == '=') {
        level++;
        q++;
    }
    return q < x->end && *q == '[' ? level : -1;
}

/* Skips a long bracket of the given level; sets the contents. */
static void long_skip(lexer *x, int level, tok *t)
{
    x->p += level + 2;
    if (x->p < x->end && (*x->p == '\n' || *x->p == '\r'))
        adv(x); /* the first newline is not part of the string */
    t->s = x->p;
    while (x->p < x->end) {
        if (*x->p == ']') {
            const char *q = x->p + 1;
            int n = 0;
            while (q < x->end && *q == '=') {
                n++;
                q++;
            }
            if (n == level && q < x->end && *q == ']') {
                t->n = (size_t)(x->p - t->s);
                x->p = q + 1;
                return;
            }
            x->p++;
        } else {
            adv(x);
        }
    }
    t->n = (size_t)(x->p - t->s);
}

static int is_name_char(char c, int first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* The next token; comments and whitespace are skipped. */
static tok next(lexer *x)
{
    tok t = {T_EOF, NULL, 0, 0};
    for (;;) {
        while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r' ||
                                 *x->p == '\f' || *x->p == '\v'))
            adv(x);
        if (x->end - x->p >= 2 && x->p[0] == '-' && x->p[1] == '-') {
            x->p += 2;
            int level = long_open(x);
            tok ignored;
            if (level >= 0)
                long_skip(x, level, &ignored);
            else
                while (x->p < x->end && *x->p != '\n' && *x->p != '\r')
                    x->p++;
            continue;
        }
        break;
    }
    t.line = x->line;
    if (x->p >= x->end)
        return t;
    char c = *x->p;
    if (is_name_char(c, 1)) {
        t.kind = T_NAME;
        t.s = x->p;
        while (x->p < x->end && is_name_char(*x->p, 0))
            x->p++;
        t.n = (size_t)(x->p - t.s);
    } else if ((c >= '0' && c <= '9') ||
               (c == '.' && x->p + 1 < x->end && x->p[1] >= '0' && x->p[1] <= '9')) {
        t.kind = T_NUMBER;
        t.s = x->p;
        while (x->p < x->end) {
            char d = *x->p;
            if ((d == '+' || d == '-') && strchr("eEpP", x->p[-1]))
                x->p++;
            else if (is_name_char(d, 0) || d == '.')
                x->p++;
            else
                break;
        }
        t.n = (size_t)(x->p - t.s);
    } else if (c == '"' || c == '\'') {
        t.kind = T_STRING;
        x->p++;
        t.s = x->p;
        while (x->p < x->end && *x->p != c) {
            if (*x->p == '\\' && x->p + 1 < x->end)
                x->p++;
            adv(x);
        }
        t.n = (size_t)(x->p - t.s);
        if (x->p < x->end)
            x->p++;
    } else if (long_open(x) >= 0) {
        t.kind = T_STRING;
        long_skip(x, long_open(x), &t);
    } else {
        static const char *const ops[] = {"...", "==", "~=", "<=", ">=", "..", "::", "//", "<<", ">>", NULL};
        t.kind = T_OP;
        t.s = x->p;
        t.n = 1;
        for (size_t i = 0; ops[i]; i++) {
            size_t n = strlen(ops[i]);
            if ((size_t)(x->end - x->p) >= n && memcmp(x->p, ops[i], n) == 0) {
                t.n = n;
                break;
            }
        }
        x->p += t.n;
    }
    return t;
}

static int is(const tok *t, int kind, const char *s)
{
    return t->kind == kind && (!s || (t->n == strlen(s) && memcmp(t->s, s, t->n) == 0));
}

/* +1 for a token that opens a bracket or a block, -1 for one that closes
 * it, else 0. */
static int depth_change(const tok *t)
{
    if (is(t, T_OP, "{") || is(t, T_OP, "(") || is(t, T_OP, "[") || is(t, T_NAME, "function") ||
        is(t, T_NAME, "do") || is(t, T_NAME, "if") || is(t, T_NAME, "repeat"))
        return 1;
    if (is(t, T_OP, "}") || is(t, T_OP, ")") || is(t, T_OP, "]") || is(t, T_NAME, "end") ||
        is(t, T_NAME, "until"))
        return -1;
    return 0;
}

/* Positions x at the start of line `line`. */
static void seek_line(lexer *x, int line)
{
    while (x->p < x->end && x->line < line)
        adv(x);
    if (x->line == 1 && x->p < x->end && *x->p == '#') /* a #! first line */
        while (x->p < x->end && *x->p != '\n' && *x->p != '\r')
            x->p++;
}

/* After `call` (and for a step its id) on line `line`, leaves x just past
 * the table's "{". want_id: the step's id must be the argument (else any
 * name will do, as in step(id) { ... }). Returns 0, or -1. */
static int find_call(lexer x0, int line, const char *call, const char *id, int want_id, lexer *out)
{
    lexer x = x0;
    for (tok t = next(&x); t.kind != T_EOF && t.line == line; t = next(&x)) {
        if (!is(&t, T_NAME, call))
            continue;
        lexer y = x;
        tok a = next(&y);
        int paren = 0;
        if (is(&a, T_OP, "(")) {
            paren = 1;
            a = next(&y);
        }
        if (id) {
            int ok = want_id ? is(&a, T_STRING, id) : a.kind == T_NAME;
            if (!ok)
                continue;
            a = next(&y);
            if (paren) {
                if (!is(&a, T_OP, ")"))
                    continue;
                a = next(&y);
            }
            paren = 0;
            if (is(&a, T_OP, "(")) {
                paren = 1;
                a = next(&y);
            }
        }
        if (is(&a, T_OP, "{")) {
            *out = y;
            return 0;
        }
    }
    return -1;
}

/* x is just past a "{": finds field `key` ("#N": the Nth list item) and
 * leaves x at the start of its value. Sets *line to the key's line (a list
 * item's: its first token's). Returns 0, or -1 when the table ends first. */
static int find_field(lexer *x, const char *key, int *line)
{
    long want_pos = key[0] == '#' ? strtol(key + 1, NULL, 10) : 0;
    long pos = 0;
    for (;;) {
        lexer at = *x;
        tok t = next(x);
        if (t.kind == T_EOF || is(&t, T_OP, "}"))
            return -1;
        /* the start of a field: NAME =, [STRING] =, or a list item */
        int named = 0, match = 0;
        if (t.kind == T_NAME) {
            lexer y = *x;
            tok e = next(&y);
            if (is(&e, T_OP, "=")) {
                named = 1;
                match = !want_pos && is(&t, T_NAME, key);
                *x = y;
            }
        } else if (is(&t, T_OP, "[")) {
            /* a list item never starts with "[": this is [key] = value */
            named = 1;
            lexer y = *x;
            tok s = next(&y), c = next(&y), e = next(&y);
            if (s.kind == T_STRING && is(&c, T_OP, "]") && is(&e, T_OP, "=")) {
                match = !want_pos && s.n == strlen(key) && memcmp(s.s, key, s.n) == 0;
                *x = y;
            } else {
                *x = at; /* [expr] = value: skipped whole below */
            }
        }
        if (!named) {
            pos++;
            match = want_pos && pos == want_pos;
            *x = at; /* the item's first token is part of its value */
        }
        if (match) {
            *line = t.line;
            return 0;
        }
        /* skip the value up to the "," or ";" that ends it, or the "}" */
        int depth = 0;
        for (;;) {
            lexer before = *x;
            tok v = next(x);
            if (v.kind == T_EOF)
                return -1;
            if (depth == 0 && (is(&v, T_OP, ",") || is(&v, T_OP, ";")))
                break;
            if (depth == 0 && is(&v, T_OP, "}")) {
                *x = before;
                break;
            }
            depth += depth_change(&v);
        }
    }
}

int pb_source_line(const char *text, size_t len, int line, const char *call, const char *id,
                   const char *const *path, size_t npath)
{
    if (!text || line < 1 || !call)
        return line;
    lexer x = {text, text + len, 1};
    seek_line(&x, line);
    if (find_call(x, line, call, id, 1, &x) < 0 && (!id || find_call(x, line, call, id, 0, &x) < 0))
        return line;
    int found = line;
    for (size_t i = 0; i < npath; i++) {
        if (!path[i])
            break;
        int at;
        if (find_field(&x, path[i], &at) < 0)
            break;
        found = at;
        if (i + 1 < npath && path[i + 1]) {
            /* the value must be a table to go on: skip "key =" if the value
             * is a named field, then expect "{" */
            lexer y = x;
            tok v = next(&y);
            if (!is(&v, T_OP, "{"))
                break;
            x = y;
        }
    }
    return found;
}

int pb_site_line(const pb_site *s, const char *key)
{
    lua_State *L = s->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pb_key_sources);
    const pb_sources *src = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!src || !s->file || !s->call)
        return s->line;
    for (size_t i = 0; i < src->n; i++) {
        if (strcmp(src->v[i].path, s->file) != 0)
            continue;
        const char *path[PB_SITE_DEPTH + 1];
        size_t n = 0;
        for (; n < s->npath && n < PB_SITE_DEPTH; n++)
            path[n] = s->path[n];
        if (key)
            path[n++] = key;
        return pb_source_line(src->v[i].text, src->v[i].len, s->line, s->call, s->id, path, n);
    }
    return s->line;
}

pb_site pb_site_sub(const pb_site *s, const char *key, const char *owner)
{
    pb_site sub = *s;
    sub.owner = owner;
    if (sub.npath < PB_SITE_DEPTH)
        sub.path[sub.npath++] = key;
    else
        sub.call = NULL; /* deeper than tracked: the object's line */
    return sub;
}
