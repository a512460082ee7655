/*
 * secrets.c — resolving and redacting secrets. See include/secrets.h.
 */
#include "secrets.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64 * 1024)
#define SECRET_MIN_LEN 4

typedef struct secret {
    char *name;
    char *value;
    size_t len;
    struct secret *next;
} secret;

static secret *known;

/* Every secret name irp has heard of (the configuration's secret "NAME",
 * each one resolved): a child process must not inherit NAME or NAME_FILE
 * from irp's environment, or `printenv NAME | rev` would defeat redaction. */
#define SECRET_NAMES_MAX 1024
static char *declared[SECRET_NAMES_MAX];
static size_t ndeclared;

void sec_declare(const char *name)
{
    if (!sec_valid_name(name))
        return;
    for (size_t i = 0; i < ndeclared; i++)
        if (!strcmp(declared[i], name))
            return;
    if (ndeclared < SECRET_NAMES_MAX)
        declared[ndeclared++] = ut_xstrdup(name);
}

int sec_env_entry_is_secret(const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; i < ndeclared; i++) {
        size_t k = strlen(declared[i]);
        if (strncmp(entry, declared[i], k) != 0)
            continue;
        if (n == k || (n == k + 5 && !strncmp(entry + k, "_FILE", 5)))
            return 1;
    }
    return 0;
}

int sec_valid_name(const char *name)
{
    if (!name || !*name || (*name >= '0' && *name <= '9') || strlen(name) > 128)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

static char *read_secret_file(const char *path, size_t *len, char *err, size_t err_size,
                              const char *name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "secret %s: cannot open %s_FILE (%s): %s", name, name, path,
                 strerror(errno));
        return NULL;
    }
    char *buf = ut_xmalloc(SECRET_FILE_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, SECRET_FILE_MAX + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, err_size, "secret %s: cannot read %s_FILE: %s", name, name, strerror(errno));
            close(fd);
            free(buf);
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > SECRET_FILE_MAX) {
            snprintf(err, err_size, "secret %s: %s_FILE is larger than 64 KiB", name, name);
            close(fd);
            free(buf);
            return NULL;
        }
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--; /* files written by editors end with a newline that is not part of the secret */
    buf[n] = '\0';
    *len = n;
    return buf;
}

const char *sec_get(const char *name, char *err, size_t err_size)
{
    if (!sec_valid_name(name)) {
        snprintf(err, err_size, "'%s' is not a valid secret name (letters, digits and _)",
                 name ? name : "");
        return NULL;
    }
    for (secret *s = known; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s->value;
    sec_declare(name);
    char *value = NULL;
    size_t len = 0;
    const char *env = getenv(name);
    if (env) {
        value = ut_xstrdup(env);
        len = strlen(env);
    } else {
        char file_var[160];
        snprintf(file_var, sizeof file_var, "%s_FILE", name);
        const char *path = getenv(file_var);
        if (!path) {
            snprintf(err, err_size, "secret %s is not set: export %s, or %s_FILE naming a file", name,
                     name, name);
            return NULL;
        }
        value = read_secret_file(path, &len, err, err_size, name);
        if (!value)
            return NULL;
    }
    if (len < SECRET_MIN_LEN) {
        snprintf(err, err_size, "secret %s is shorter than %d characters: too short to be redacted safely",
                 name, SECRET_MIN_LEN);
        explicit_bzero(value, len);
        free(value);
        return NULL;
    }
    secret *s = ut_xcalloc(1, sizeof *s);
    s->name = ut_xstrdup(name);
    s->value = value;
    s->len = len;
    s->next = known;
    known = s;
    return value;
}

char *sec_redact(const char *text, size_t len, size_t *out_len)
{
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t i = 0;
    while (i < len) {
        secret *hit = NULL;
        for (secret *s = known; s; s = s->next)
            if (s->len <= len - i && memcmp(text + i, s->value, s->len) == 0 &&
                (!hit || s->len > hit->len))
                hit = s;
        if (hit) {
            ut_buf_printf(&b, "[secret %s]", hit->name);
            i += hit->len;
        } else {
            ut_buf_append(&b, text + i, 1);
            i++;
        }
    }
    if (out_len)
        *out_len = b.len;
    return b.data;
}

static int contains_secret(const char *text, size_t len)
{
    for (secret *s = known; s; s = s->next)
        if (s->len <= len && memmem(text, len, s->value, s->len))
            return 1;
    return 0;
}

const char *sec_holder(const char *part, size_t len)
{
    if (!part || len < SECRET_MIN_LEN)
        return NULL;
    for (secret *s = known; s; s = s->next)
        if (len <= s->len && memmem(s->value, s->len, part, len))
            return s->name;
    return NULL;
}

void sec_redact_json(json_t *value)
{
    if (!known || !value)
        return;
    if (json_is_string(value)) {
        const char *t = json_string_value(value);
        size_t n = json_string_length(value);
        if (contains_secret(t, n)) {
            size_t m;
            char *r = sec_redact(t, n, &m);
            json_string_setn_nocheck(value, r, m);
            free(r);
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v) sec_redact_json(v);
    } else if (json_is_object(value)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(value, tmp, k, v)
        {
            sec_redact_json(v);
            if (contains_secret(k, strlen(k))) {
                char *r = sec_redact(k, strlen(k), NULL);
                json_object_set(value, r, v);
                json_object_del(value, k);
                free(r);
            }
        }
    }
}

void sec_clear(void)
{
    while (ndeclared)
        free(declared[--ndeclared]);
    while (known) {
        secret *s = known;
        known = s->next;
        explicit_bzero(s->value, s->len);
        free(s->value);
        free(s->name);
        free(s);
    }
}
