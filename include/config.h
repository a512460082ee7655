/*
 * config.h — the notifier configuration: a Lua file (`--config`,
 * $IRP_CONFIG, ./irp.conf.lua, else the embedded default of one stdout
 * notifier that answers to any name), read by the supervisor in its own
 * small sandboxed lua_State (no io, os, load or require; a memory cap and a
 * deadline). `secret "NAME"` in the file yields a marker; the value is
 * looked up with sec_get only when a notification is sent.
 * Errors read "irp.conf.lua:7: notifier 'pd' has unknown type 'pagerdutty'
 * (did you mean 'pagerduty'?)".
 * Depends on: Lua 5.4, secrets.h, util.h.
 */
#ifndef IRP_CONFIG_H
#define IRP_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    NT_WEBHOOK,
    NT_SLACK,
    NT_TEAMS,
    NT_PAGERDUTY,
    NT_OPSGENIE,
    NT_STDOUT,
    NT_FILE
} nt_kind;

/* A configured value: a literal, or the name of a secret (exactly one set). */
typedef struct cf_value {
    char *literal;
    char *secret;
} cf_value;

typedef struct cf_notifier {
    char *name;
    nt_kind kind;
    cf_value url;            /* webhook, slack, teams; pagerduty (override) */
    cf_value signing_secret; /* webhook: whsec_<base64>, always a secret */
    cf_value routing_key;    /* pagerduty, always a secret */
    cf_value api_key;        /* opsgenie, always a secret */
    char *api_url;           /* opsgenie base, default https://api.opsgenie.com */
    char *path;              /* file */
    char *ca_file;           /* extra trust anchors (private CA) */
    char *source;            /* pagerduty payload.source; default: host name */
    int64_t timeout_ms;      /* whole attempt */
    int64_t connect_timeout_ms;
    int64_t give_up_after_ms;/* from when the notification was queued */
    int64_t backoff_ms;      /* first retry delay; doubles, with jitter */
    int max_attempts;        /* 0: no limit but give_up_after */
    int line;                /* where it is defined (0 if unknown) */
} cf_notifier;

/* One entry of the `attach` section: a local attach file for a playbook. */
typedef struct cf_attach {
    char *playbook;          /* playbook id */
    char *path;              /* as written, relative to the configuration's directory */
    int line;
} cf_attach;

typedef struct cf_config {
    char *path;              /* NULL for the embedded default */
    int embedded;            /* 1: the stdout notifier answers to any name */
    cf_notifier *items;
    size_t count;
    cf_attach *attach;       /* the `attach` section (config_attach.c) */
    size_t nattach;
} cf_config;

#define CF_DEFAULT_TIMEOUT_MS 10000
#define CF_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define CF_DEFAULT_GIVE_UP_MS (24LL * 3600 * 1000)
#define CF_DEFAULT_BACKOFF_MS 2000
#define CF_DEFAULT_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"
#define CF_DEFAULT_OPSGENIE_URL "https://api.opsgenie.com"

/* path NULL: $IRP_CONFIG, else ./irp.conf.lua if it exists, else the
 * embedded default; path cf_embedded_default: the embedded default
 * whatever the environment says. NULL with err on a bad file (exit 65
 * material). */
cf_config *cf_load(const char *path, char *err, size_t err_size);
/* A path to give cf_load for the embedded default (compared by address). */
extern const char cf_embedded_default[];
/* The file cf_load(path) reads, made absolute (malloc'd; as found when it
 * cannot be resolved), or NULL for the embedded default. */
char *cf_chosen_path(const char *path);
/* Loads exactly this file. */
cf_config *cf_load_file(const char *path, char *err, size_t err_size);
/* Loads configuration text (chunk name used in messages). For tests. */
cf_config *cf_load_text(const char *text, size_t len, const char *chunkname, char *err, size_t err_size);
/* The embedded default: one stdout notifier answering to any name. */
cf_config *cf_default(void);
void cf_free(cf_config *c);

/* The notifier called name, or NULL (the embedded default's stdout
 * notifier answers to every name). */
const cf_notifier *cf_find(const cf_config *c, const char *name);
/* "did you mean" for a name that is not configured, or NULL. */
const char *cf_suggest(const cf_config *c, const char *name);

const char *cf_kind_name(nt_kind kind);
/* 1 for the kinds that speak HTTP. */
int cf_kind_is_http(nt_kind kind);
/* 1 for the kinds that track one incident per run (pagerduty, opsgenie). */
int cf_kind_tracks(nt_kind kind);

/* The value (a literal, or the secret's value via sec_get). NULL with err
 * naming the secret, never its value. */
const char *cf_resolve(const cf_value *v, char *err, size_t err_size);
/* 1 when the value is set. */
int cf_value_set(const cf_value *v);

/* Appends the `attach` section to a load request's attach list, as
 * {"playbook": id, "path": file} items (applied to that playbook only). */
void cf_attach_append(const cf_config *c, json_t *list);

#endif
