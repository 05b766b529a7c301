/* libFuzzer harness: the wire frame parser (src/wire.c, wire_parse) on any
 * multipart message, as the reader hands it over after wire_recv. */
#include "wire.h"
#include "frames.h"     /* after wire.h: fuzz_frames_to_wire */

/* One mode of the parser: a plain RPC's (6 frames) or a broker worker's
 * (a 7th frame, the caller's user id). */
static void
parse_as(const fuzz_frames *in, int max_frames)
{
    wire_message m;
    int total = fuzz_frames_to_wire(in, &m, max_frames);
    int rc = wire_parse(&m, total, max_frames);
    if (rc == WIRE_MESSAGE) {
        /* what the dispatcher will read: every field inside its frame */
        int want = m.has_caller ? WIRE_FRAMES_MAX : WIRE_FRAMES;
        if (total != want || (m.has_caller && max_frames != WIRE_FRAMES_MAX)
            || m.uuid_len > WIRE_MAX_UUID
            || m.routing != zmq_msg_data(&m.frames[0])
            || m.routing_len != zmq_msg_size(&m.frames[0])
            || m.body_len != zmq_msg_size(&m.frames[5])
            || (m.has_caller && m.caller_len != zmq_msg_size(&m.frames[6])))
            abort();
        volatile unsigned sum = (unsigned char)m.type;
        for (size_t i = 0; i < m.uuid_len; i++)
            sum += (unsigned char)m.uuid[i];
        if (m.body_len > 0)
            sum += (unsigned char)m.body[0] + (unsigned char)m.body[m.body_len - 1];
        for (size_t i = 0; m.has_caller && i < m.caller_len; i++)
            sum += (unsigned char)m.caller[i];
        (void)sum;
    }
    else if (rc == WIRE_MALFORMED) {
        if (m.problem == NULL)
            abort();
    }
    else if (rc != WIRE_PROBE) {
        abort();
    }
    wire_release(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames in;
    fuzz_frames_split(data, size, &in);
    if (in.n == 0)
        return 0;   /* a ROUTER always delivers the routing frame */
    parse_as(&in, WIRE_FRAMES);
    parse_as(&in, WIRE_FRAMES_MAX);
    fuzz_frames_free(&in);
    return 0;
}
