/* libFuzzer harness: the wire frame parser (src/wire.c, wire_parse) on any
 * multipart message, as the reader hands it over after wire_recv. */
#include "wire.h"
#include "frames.h"     /* after wire.h: fuzz_frames_to_wire */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames in;
    fuzz_frames_split(data, size, &in);
    if (in.n == 0)
        return 0;   /* a ROUTER always delivers the routing frame */
    wire_message m;
    int total = fuzz_frames_to_wire(&in, &m);
    int rc = wire_parse(&m, total);
    if (rc == WIRE_MESSAGE) {
        /* what the dispatcher will read: every field inside its frame */
        if (total != WIRE_FRAMES || m.uuid_len > WIRE_MAX_UUID
            || m.routing != zmq_msg_data(&m.frames[0])
            || m.routing_len != zmq_msg_size(&m.frames[0])
            || m.body_len != zmq_msg_size(&m.frames[5]))
            abort();
        volatile unsigned sum = (unsigned char)m.type;
        for (size_t i = 0; i < m.uuid_len; i++)
            sum += (unsigned char)m.uuid[i];
        if (m.body_len > 0)
            sum += (unsigned char)m.body[0] + (unsigned char)m.body[m.body_len - 1];
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
    fuzz_frames_free(&in);
    return 0;
}
