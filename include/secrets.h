/*
 * secrets.h — the supervisor's secrets: a name resolves to the environment
 * variable NAME, or to the contents of the file named by NAME_FILE. Every
 * value resolved is remembered so that anything written to the journal or
 * the terminal can be redacted (a second line of defence: values never
 * enter the worker in the first place).
 * Depends on: jansson.
 */
#ifndef IRP_SECRETS_H
#define IRP_SECRETS_H

#include <jansson.h>
#include <stddef.h>

/* The value of secret NAME (owned by the registry), or NULL with err
 * ("secret SLACK_URL is not set: export SLACK_URL or SLACK_URL_FILE"). */
const char *sec_get(const char *name, char *err, size_t err_size);

/* 1 when name is a valid secret name (letters, digits, '_'; not a digit first). */
int sec_valid_name(const char *name);

/* A malloc'd copy of text with every known secret value replaced by
 * "[secret NAME]". */
char *sec_redact(const char *text, size_t len, size_t *out_len);

/* The name of a known secret whose value contains part (at least 4
 * bytes long), or NULL. For pieces of a secret that other code quotes on
 * its own: the host name of a secret URL in a libcurl error message. */
const char *sec_holder(const char *part, size_t len);

/* Redacts every string inside value, in place (keys too). */
void sec_redact_json(json_t *value);

/* Remembers that NAME is a secret (the configuration names it); sec_get
 * does so for every name it resolves. */
void sec_declare(const char *name);

/* 1 when the environment entry "VAR=value" is a secret irp knows of (VAR
 * is a declared NAME or NAME_FILE): children do not inherit it. */
int sec_env_entry_is_secret(const char *entry);

/* Forgets every value (and wipes the memory). */
void sec_clear(void);

#endif
