/*
 * notify_http.c — concurrent HTTP POSTs for the notifiers: libcurl's multi
 * socket interface driven by the run's libuv loop (curl's
 * docs/examples/multi-uv.c pattern: curl says which sockets to watch
 * through CURLMOPT_SOCKETFUNCTION, uv_poll watches them, one uv_timer
 * serves CURLMOPT_TIMERFUNCTION, and curl_multi_socket_action is called
 * from their callbacks). Nothing here blocks the loop. Every transfer:
 * http/https only, no redirects followed, TLS peer and host verified (a
 * `ca_file` replaces the trust store; there is no way to turn verification
 * off), connect and total timeouts, no verbose output, answers capped at
 * 64 KiB. Transport errors are redacted (curl's messages can contain URLs,
 * and some URLs are secrets). libcurl is initialised here, on the first
 * HTTP notification, so commands that never notify never pay for it.
 * The handles are unreferenced: pending notifications never keep the
 * loop alive on their own (nt_drain holds it open while it waits).
 * Depends on: libcurl, libuv, secrets.h, util.h.
 */
#include "notify_internal.h"
#include "secrets.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX ((size_t)64 << 10)

typedef struct nh_transfer {
    nh_multi *m;
    CURL *easy;
    nt_request req;
    struct curl_slist *headers;
    ut_buf body;
    int body_truncated;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    int64_t started;
    nh_done_fn done;
    void *data;
    struct nh_transfer *prev, *next;
} nh_transfer;

typedef struct nh_socket {
    uv_poll_t poll;
    curl_socket_t fd;
    nh_multi *m;
    struct nh_socket *prev, *next;
} nh_socket;

struct nh_multi {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *timer;
    nh_transfer *transfers;
    nh_socket *sockets;
    size_t active;
};

static void free_handle(uv_handle_t *h)
{
    free(h->data);
}

/* ------------------------------------------------------------- sockets */

static void socket_unlink(nh_multi *m, nh_socket *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        m->sockets = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->m = NULL;
}

static void socket_close(nh_multi *m, nh_socket *s)
{
    socket_unlink(m, s);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, free_handle);
}

static void check_done(nh_multi *m);

static void on_poll(uv_poll_t *h, int status, int events)
{
    nh_socket *s = h->data;
    nh_multi *m = s->m;
    if (!m)
        return;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    nh_multi *m = userp;
    nh_socket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(m->multi, fd, NULL);
            socket_close(m, s);
        }
        return 0;
    }
    if (!s) {
        s = ut_xcalloc(1, sizeof *s);
        s->fd = fd;
        s->m = m;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        uv_unref((uv_handle_t *)&s->poll);
        s->next = m->sockets;
        if (m->sockets)
            m->sockets->prev = s;
        m->sockets = s;
        curl_multi_assign(m->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* --------------------------------------------------------------- timer */

static void on_timeout(uv_timer_t *t)
{
    nh_multi *m = t->data;
    int running = 0;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    nh_multi *m = userp;
    if (timeout_ms < 0)
        uv_timer_stop(m->timer);
    else /* 0 too goes through the loop: curl must not be re-entered from here */
        uv_timer_start(m->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ----------------------------------------------------------- transfers */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    nh_transfer *t = userdata;
    size_t n = size * nmemb;
    size_t max = t->req.answer_max ? t->req.answer_max : BODY_MAX;
    if (t->body.len < max)
        ut_buf_append(&t->body, ptr, n > max - t->body.len ? max - t->body.len : n);
    if (t->body.len + n > max)
        t->body_truncated = 1;
    return n; /* the rest is read and dropped: an answer is not worth failing over */
}

static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    nh_transfer *t = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && !strncasecmp(buffer, name, sizeof name - 1)) {
        size_t vlen = n - (sizeof name - 1);
        if (vlen >= sizeof t->retry_after)
            vlen = sizeof t->retry_after - 1;
        memcpy(t->retry_after, buffer + sizeof name - 1, vlen);
        t->retry_after[vlen] = '\0';
        char *end = t->retry_after + strlen(t->retry_after);
        while (end > t->retry_after && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            *--end = '\0';
    } else if (n >= 5 && !strncmp(buffer, "HTTP/", 5)) {
        t->retry_after[0] = '\0'; /* a new response (after 100 Continue) */
    }
    return n;
}

static void transfer_unlink(nh_multi *m, nh_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        m->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    m->active--;
}

static void transfer_free(nh_transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    nt_request_free(&t->req);
    ut_buf_free(&t->body);
    free(t);
}

/* text with every occurrence of needle replaced by with. malloc'd. */
static char *replace_all(const char *text, const char *needle, const char *with)
{
    ut_buf b = {0};
    ut_buf_append(&b, "", 0);
    size_t n = strlen(needle);
    const char *p = text, *hit;
    while ((hit = strstr(p, needle))) {
        ut_buf_append(&b, p, (size_t)(hit - p));
        ut_buf_append(&b, with, strlen(with));
        p = hit + n;
    }
    ut_buf_append(&b, p, strlen(p));
    return b.data;
}

char *nh_safe_error(const char *text, const char *url)
{
    size_t n;
    char *safe = sec_redact(text, strlen(text), &n);
    CURLU *u = url ? curl_url() : NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        static const CURLUPart parts[] = {CURLUPART_HOST, CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_PATH,
                                          CURLUPART_QUERY};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            char *part = NULL;
            if (curl_url_get(u, parts[i], &part, 0) != CURLUE_OK || !part)
                continue;
            const char *name = sec_holder(part, strlen(part));
            if (name && strstr(safe, part)) {
                char *with = ut_xasprintf("[secret %s]", name);
                char *next = replace_all(safe, part, with);
                free(with);
                free(safe);
                safe = next;
            }
            curl_free(part);
        }
    }
    curl_url_cleanup(u);
    return safe;
}

static int is_fatal(CURLcode code)
{
    return code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT || code == CURLE_BAD_FUNCTION_ARGUMENT;
}

static void check_done(nh_multi *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        nh_transfer *t = (nh_transfer *)(void *)priv;
        nh_result res;
        memset(&res, 0, sizeof res);
        res.curl_code = (int)code;
        res.transport_ok = code == CURLE_OK;
        res.transport_fatal = is_fatal(code);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
        ut_buf_append(&t->body, "", 0);
        res.body = t->body.data;
        res.body_len = t->body.len;
        res.body_truncated = t->body_truncated;
        curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &res.content_type);
        snprintf(res.retry_after, sizeof res.retry_after, "%s", t->retry_after);
        res.elapsed_ms = ut_mono_ms() - t->started;
        if (code != CURLE_OK) {
            const char *text = t->errbuf[0] ? t->errbuf : curl_easy_strerror(code);
            char *safe = nh_safe_error(text, t->req.url);
            snprintf(res.error, sizeof res.error, "%s", safe);
            free(safe);
            size_t len = strlen(res.error);
            while (len > 0 && (res.error[len - 1] == '\n' || res.error[len - 1] == '.'))
                res.error[--len] = '\0';
        }
        curl_multi_remove_handle(m->multi, easy);
        transfer_unlink(m, t);
        if (t->done)
            t->done(t->data, &res);
        transfer_free(t);
    }
}

nh_multi *nh_new(uv_loop_t *loop, char *err, size_t err_size)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(err, err_size, "cannot initialise libcurl: %s", curl_easy_strerror(rc));
        return NULL;
    }
    nh_multi *m = ut_xcalloc(1, sizeof *m);
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi) {
        snprintf(err, err_size, "cannot create a libcurl multi handle");
        free(m);
        curl_global_cleanup();
        return NULL;
    }
    m->timer = ut_xcalloc(1, sizeof *m->timer);
    uv_timer_init(loop, m->timer);
    m->timer->data = m;
    uv_unref((uv_handle_t *)m->timer);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

/* Every option that makes a transfer safe; a failure here is a libcurl
 * too old or built without TLS, reported rather than sent unsafely. */
static int configure(nh_transfer *t, char *err, size_t err_size)
{
    CURL *e = t->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                                  \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt(e, opt, val);                                                                        \
    } while (0)
    SET(CURLOPT_URL, t->req.url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->req.ca_file)
        SET(CURLOPT_CAINFO, t->req.ca_file);
    SET(CURLOPT_VERBOSE, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_NOPROGRESS, 1L);
    if (!t->req.method || !strcmp(t->req.method, "POST") || t->req.body) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, t->req.body ? t->req.body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->req.body_len);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (t->req.method && strcmp(t->req.method, "POST") && strcmp(t->req.method, "GET"))
        SET(CURLOPT_CUSTOMREQUEST, t->req.method);
    if (t->req.method && !strcmp(t->req.method, "HEAD"))
        SET(CURLOPT_NOBODY, 1L);
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_CONNECTTIMEOUT_MS, t->req.connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, t->req.timeout_ms);
    SET(CURLOPT_USERAGENT, "irp/" IRP_VERSION);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_PRIVATE, t);
#undef SET
    if (rc != CURLE_OK) {
        snprintf(err, err_size, "libcurl refused an option: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

void *nh_send(nh_multi *m, nt_request *req, nh_done_fn done, void *data, char *err, size_t err_size)
{
    nh_transfer *t = ut_xcalloc(1, sizeof *t);
    t->m = m;
    t->req = *req;
    memset(req, 0, sizeof *req);
    t->done = done;
    t->data = data;
    t->easy = curl_easy_init();
    if (!t->easy) {
        snprintf(err, err_size, "cannot create a libcurl handle");
        transfer_free(t);
        return NULL;
    }
    for (int i = 0; i < t->req.nheaders; i++) {
        struct curl_slist *l = curl_slist_append(t->headers, t->req.headers[i]);
        if (!l) {
            snprintf(err, err_size, "out of memory for headers");
            transfer_free(t);
            return NULL;
        }
        t->headers = l;
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
    if (l)
        t->headers = l;
    if (configure(t, err, err_size) < 0) {
        transfer_free(t);
        return NULL;
    }
    t->started = ut_mono_ms();
    t->next = m->transfers;
    if (m->transfers)
        m->transfers->prev = t;
    m->transfers = t;
    m->active++;
    CURLMcode mc = curl_multi_add_handle(m->multi, t->easy);
    if (mc != CURLM_OK) {
        snprintf(err, err_size, "libcurl cannot start the transfer: %s", curl_multi_strerror(mc));
        transfer_unlink(m, t);
        transfer_free(t);
        return NULL;
    }
    return t;
}

void nh_cancel(nh_multi *m, void *transfer)
{
    nh_transfer *t = transfer;
    if (!m || !t)
        return;
    curl_multi_remove_handle(m->multi, t->easy);
    transfer_unlink(m, t);
    transfer_free(t);
}

size_t nh_active(const nh_multi *m)
{
    return m ? m->active : 0;
}

void nh_free(nh_multi *m)
{
    if (!m)
        return;
    while (m->transfers)
        nh_cancel(m, m->transfers);
    curl_multi_cleanup(m->multi); /* may report sockets removed: on_socket closes their watchers */
    while (m->sockets)
        socket_close(m, m->sockets);
    uv_timer_stop(m->timer);
    m->timer->data = m->timer;
    uv_close((uv_handle_t *)m->timer, free_handle);
    free(m);
    curl_global_cleanup();
}
