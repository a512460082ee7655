/*
 * notify_sign.c — Standard Webhooks signatures: the secret is "whsec_"
 * followed by base64 of the key bytes; the signature is
 * "v1," + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")).
 * Messages never contain the secret or the key.
 * Depends on: OpenSSL libcrypto (EVP base64, HMAC), util.h.
 */
#include "notify_internal.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHSEC_PREFIX "whsec_"
#define KEY_MAX 1024

/* Decodes base64 (padding optional, as the reference libraries accept)
 * into key; returns its length or -1. */
static int decode_key(const char *b64, unsigned char *key, size_t key_size)
{
    size_t len = strlen(b64);
    if (len == 0 || len > key_size) /* base64 is longer than what it encodes */
        return -1;
    char *padded = ut_xmalloc(len + 4);
    memcpy(padded, b64, len);
    while (len % 4)
        padded[len++] = '=';
    padded[len] = '\0';
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int out1 = 0, out2 = 0, rc = -1;
    if (ctx) {
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, key, &out1, (const unsigned char *)padded, (int)len) >= 0 &&
            EVP_DecodeFinal(ctx, key + out1, &out2) == 1)
            rc = out1 + out2;
        EVP_ENCODE_CTX_free(ctx);
    }
    explicit_bzero(padded, len);
    free(padded);
    return rc > 0 ? rc : -1;
}

int nt_sign(const char *secret, const char *id, long long timestamp, const char *body, size_t body_len, char *out,
            size_t out_size, char *err, size_t err_size)
{
    const char *b64 = !strncmp(secret, WHSEC_PREFIX, strlen(WHSEC_PREFIX)) ? secret + strlen(WHSEC_PREFIX) : secret;
    unsigned char key[KEY_MAX];
    int key_len = decode_key(b64, key, sizeof key);
    if (key_len < 0) {
        snprintf(err, err_size, "the signing secret is not \"whsec_\" followed by base64 (as Standard Webhooks secrets are)");
        return -1;
    }
    ut_buf signed_content = {0};
    ut_buf_printf(&signed_content, "%s.%lld.", id, timestamp);
    ut_buf_append(&signed_content, body, body_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char *ok = HMAC(EVP_sha256(), key, key_len, (const unsigned char *)signed_content.data,
                             signed_content.len, mac, &mac_len);
    explicit_bzero(key, sizeof key);
    ut_buf_free(&signed_content);
    if (!ok) {
        snprintf(err, err_size, "HMAC-SHA256 failed (OpenSSL)");
        return -1;
    }
    unsigned char b64mac[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock(b64mac, mac, (int)mac_len);
    if ((size_t)snprintf(out, out_size, "v1,%s", (const char *)b64mac) >= out_size) {
        snprintf(err, err_size, "signature buffer too small");
        return -1;
    }
    return 0;
}
