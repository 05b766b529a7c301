/* Reading a ZAP request from its frames (see zap_request.h); the decision
 * on it is zap.c's. */
#include "zap_request.h"

#include <string.h>

static int
frame_is(const zap_frame *f, const char *text)
{
    size_t len = strlen(text);
    return f->len == len && memcmp(f->data, text, len) == 0;
}

zap_request_status
zap_request_parse(const zap_frame *frames, size_t n, zap_request *req)
{
    memset(req, 0, sizeof(*req));
    if (n < 6)
        return ZAP_REQUEST_NOT_ZAP;
    req->request_id = frames[1];
    req->domain = frames[2];
    if (!frame_is(&frames[0], "1.0"))
        return ZAP_REQUEST_BAD_VERSION;
    const zap_frame *mech = &frames[5];
    if (frame_is(mech, "NULL")) {
        req->mechanism = ZAP_MECH_NULL;
    }
    else if (frame_is(mech, "PLAIN")) {
        req->mechanism = ZAP_MECH_PLAIN;
        if (n < 8)
            return ZAP_REQUEST_BAD_CREDENTIALS;
        req->login = frames[6];
        req->password = frames[7];
    }
    else if (frame_is(mech, "CURVE")) {
        req->mechanism = ZAP_MECH_CURVE;
        if (n < 7 || frames[6].len != ZAP_KEY_LEN)
            return ZAP_REQUEST_BAD_CREDENTIALS;
        req->key = (const unsigned char *)frames[6].data;
    }
    else {
        req->mechanism = ZAP_MECH_OTHER;
    }
    return ZAP_REQUEST_OK;
}
