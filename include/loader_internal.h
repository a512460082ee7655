/*
 * loader_internal.h — what the loader's files share: field readers that
 * report type problems in the house wording, and the step list built from
 * the playbook's steps plus attach blocks. Not for other parts.
 * Depends on: Lua 5.4, jansson, loader.h.
 */
#ifndef IRP_LOADER_INTERNAL_H
#define IRP_LOADER_INTERNAL_H

#include "loader.h"

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

#define PB_SITE_DEPTH 3

/* Where problems about one object (playbook, step, attach block, or a
 * table inside one) go. call/id/path locate the table in the file's text
 * for pb_site_line: the DSL call at line ("playbook", "step", "attach"),
 * the step's id, and the keys from the call's table down to this one
 * ("inputs", "host"; "#2" for the second list item). */
typedef struct {
    lua_State *L;
    json_t *problems;
    const char *file;
    int line;
    const char *owner; /* "playbook", "step \"isolate\"", ... */
    const char *call;  /* NULL: every problem at line */
    const char *id;
    const char *path[PB_SITE_DEPTH];
    size_t npath;
} pb_site;

/* A site for a table inside s's table, at key (a field name or "#N"). */
pb_site pb_site_sub(const pb_site *s, const char *key, const char *owner);

/* The line of field key (NULL: the table itself) of the table s is about,
 * found in the file's text; s->line when it cannot be found. Every problem
 * about a field is reported there. [-0, +0, -] */
int pb_site_line(const pb_site *s, const char *key);

/* The search behind pb_site_line, on a file's text: the table of the DSL
 * call `call` (for "step": with argument id) on line `line`, then the
 * path of keys into it. Returns the line of the deepest key found, or
 * line. */
int pb_source_line(const char *text, size_t len, int line, const char *call, const char *id,
                   const char *const *path, size_t npath);

/* The text of every file loaded, while it is validated: a light userdata
 * at registry key pb_key_sources (NULL: no lines of fields). */
typedef struct {
    struct pb_source {
        char *path, *text;
        size_t len;
    } *v;
    size_t n;
} pb_sources;
extern const char pb_key_sources;

/* "a string", "a number", ... for messages. */
const char *pb_type_phrase(lua_State *L, int idx);
/* " (did you mean 'x'?)" or "" — q is the quote character used. */
void pb_suggest(char *out, size_t size, const char *word, const char *const *candidates, char q);

/* Reports every key of the table at t that is not in allowed. */
void pb_check_unknown(pb_site *s, int t, const char *const *allowed);

/* Readers of field `name` of the table at t. Return 1 when present and
 * valid (value stored), 0 when absent, -1 when present but wrong (a
 * problem was reported). Values are read raw: no playbook code runs. */
int pb_field_string(pb_site *s, int t, const char *name, const char **out); /* out valid while t lives */
int pb_field_bool(pb_site *s, int t, const char *name, int *out);
int pb_field_duration(pb_site *s, int t, const char *name, int64_t *ms);
int pb_field_int(pb_site *s, int t, const char *name, long long lo, long long hi, long long *out);
/* A list of strings as a JSON array; unique != 0 reports duplicates. */
int pb_field_string_list(pb_site *s, int t, const char *name, int unique, json_t **out);
/* Pushes the raw field value; returns its type. [-0, +1, -] */
int pb_field_push(lua_State *L, int t, const char *name);

/* Parses a duration value (string "2m" or number of seconds) at idx:
 * 0 and *ms, or -1. [-0, +0, -] */
int pb_duration_at(lua_State *L, int idx, int64_t *ms);

/* One step of the final order (playbook steps with attach blocks merged). */
typedef struct {
    int handle;          /* index into the Lua table of step objects */
    const char *source;  /* NULL for the playbook, else the attach file */
    char *anchor;        /* "after:ID", "end:PHASE" or NULL: keeps attach order */
} pb_entry;

typedef struct {
    pb_entry *v;
    size_t n, cap;
    int objs;            /* stack index of the table handle -> step object */
} pb_list;

void pb_list_insert(pb_list *l, size_t pos, int handle, const char *source, const char *anchor);
void pb_list_free(pb_list *l);

/* Merges the attach blocks (list at attach_idx) into l. phases: declared
 * phases (array) or NULL. */
void pb_merge_attach(lua_State *L, pb_list *l, int attach_idx, const json_t *phases,
                     json_t *problems);

/* Validates the steps of l; returns the outline "steps" array and stores
 * the functions in the registry. phases: declared (may grow when derived).
 * inputs: the declared inputs object. */
json_t *pb_validate_steps(lua_State *L, pb_list *l, json_t *phases, int phases_declared,
                          const json_t *inputs, const char *pb_file, json_t *problems);

#endif
