/*
 * httpcall.h — ctx.http performed for real by the supervisor: one request
 * through the same libcurl-on-libuv engine as notifications (TLS always
 * verified, no redirects followed, http/https only), secrets in the URL or
 * headers substituted at the last moment and never journaled, the answer
 * bounded, and the request journaled as step.http.
 * Depends on: engine.h, notify_internal.h (nh_*), secrets.h.
 */
#ifndef IRP_HTTPCALL_H
#define IRP_HTTPCALL_H

#include <jansson.h>
#include <uv.h>

#include "engine.h"

/* Starts the request described by args (proto.h "http"); answers the call
 * from the loop when it completes. */
void hc_request(fx_call *call, json_t *args);
/* Checks what can be checked of a request without resolving its secrets
 * (method, a plain url's scheme, header count and names): 0, or -1 with
 * the error a live request would give. A drill calls it too, so that a
 * request a live run would refuse is refused in the drill. */
int hc_check(json_t *args, char *err, size_t err_size);
/* Cancels what is in flight and releases the HTTP engine (before the loop
 * is closed). */
void hc_shutdown(void);

#endif
