/* A ZAP request (RFC 27) read from its frames: pure C, no Python, so that
 * the ZAP handler (zap.c) and fuzz/zap_request.c share one parser. */
#ifndef PSEUD_ZAP_REQUEST_H
#define PSEUD_ZAP_REQUEST_H

#include <stddef.h>

#define ZAP_KEY_LEN 32      /* a raw CURVE public key */

typedef struct {
    const char *data;
    size_t len;
} zap_frame;

typedef enum {
    ZAP_MECH_NULL = 0,
    ZAP_MECH_PLAIN,
    ZAP_MECH_CURVE,
    ZAP_MECH_OTHER,
} zap_mechanism;

typedef enum {
    ZAP_REQUEST_OK = 0,         /* fields below set */
    ZAP_REQUEST_NOT_ZAP,        /* fewer than 6 frames: no request id to answer */
    ZAP_REQUEST_BAD_VERSION,    /* request id and domain set: answer 400 */
    ZAP_REQUEST_BAD_CREDENTIALS,/* PLAIN without login and password, CURVE
                                   without a 32-byte key: answer 400 */
} zap_request_status;

typedef struct {
    zap_frame request_id, domain;
    zap_mechanism mechanism;
    zap_frame login, password;  /* PLAIN */
    const unsigned char *key;   /* CURVE: ZAP_KEY_LEN bytes */
} zap_request;

/* Read frames [version, request id, domain, address, identity, mechanism,
 * credentials...]. Every comparison is by length and bytes: a frame with a
 * NUL inside is never taken for a shorter one. */
zap_request_status zap_request_parse(const zap_frame *frames, size_t n, zap_request *req);

#endif
