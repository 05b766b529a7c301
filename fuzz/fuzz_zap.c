/* libFuzzer harness: the ZAP request parser (src/zap_request.c) on any
 * multipart request the ZAP handler's REP socket can receive. */
#include "frames.h"
#include "zap_request.h"

static int
inside(const fuzz_frames *in, size_t i, const zap_frame *f)
{
    return f->data == in->data[i] && f->len == in->len[i];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames in;
    fuzz_frames_split(data, size, &in);
    zap_frame frames[FUZZ_MAX_FRAMES];
    for (size_t i = 0; i < in.n; i++)
        frames[i] = (zap_frame){in.data[i], in.len[i]};
    zap_request req;
    zap_request_status st = zap_request_parse(frames, in.n, &req);
    switch (st) {
    case ZAP_REQUEST_NOT_ZAP:
        if (in.n >= 6)
            abort();
        break;
    case ZAP_REQUEST_BAD_VERSION:
    case ZAP_REQUEST_BAD_CREDENTIALS:
    case ZAP_REQUEST_OK:
        if (in.n < 6 || !inside(&in, 1, &req.request_id) || !inside(&in, 2, &req.domain))
            abort();
        if (st == ZAP_REQUEST_OK && req.mechanism == ZAP_MECH_PLAIN
            && (in.n < 8 || !inside(&in, 6, &req.login) || !inside(&in, 7, &req.password)))
            abort();
        if (st == ZAP_REQUEST_OK && req.mechanism == ZAP_MECH_CURVE) {
            if (in.n < 7 || in.len[6] != ZAP_KEY_LEN
                || req.key != (const unsigned char *)in.data[6])
                abort();
            volatile unsigned sum = 0;
            for (size_t i = 0; i < ZAP_KEY_LEN; i++)
                sum += req.key[i];
            (void)sum;
        }
        break;
    default:
        abort();
    }
    fuzz_frames_free(&in);
    return 0;
}
