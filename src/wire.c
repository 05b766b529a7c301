/* Wire protocol v1: receive a multipart message and check its shape. */
#include "wire.h"

#include <errno.h>
#include <string.h>

static int
more(zmq_msg_t *msg)
{
    return zmq_msg_more(msg);
}

static int
recv_frames(void *socket, wire_message *m, int max_frames)
{
    m->nframes = 0;
    m->has_caller = 0;
    m->caller = NULL;
    m->caller_len = 0;
    m->problem = NULL;
    m->user_id = NULL;
    if (zmq_msg_init(&m->frames[0]) != 0)
        return WIRE_FAILED;
    if (zmq_msg_recv(&m->frames[0], socket, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&m->frames[0]);
        errno = err;
        return err == EAGAIN ? WIRE_NOTHING : WIRE_FAILED;
    }
    m->nframes = 1;
    int total = 1;
    int has_more = more(&m->frames[0]);
    /* the rest of a multipart message is already here: libzmq delivers it whole */
    while (has_more) {
        zmq_msg_t *slot;
        zmq_msg_t extra;
        if (m->nframes < max_frames)
            slot = &m->frames[m->nframes];
        else
            slot = &extra;
        if (zmq_msg_init(slot) != 0)
            return WIRE_FAILED;
        if (zmq_msg_recv(slot, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(slot);
            m->problem = "truncated multipart message";
            return WIRE_MALFORMED;
        }
        has_more = more(slot);
        if (total <= WIRE_FRAMES_MAX)   /* counts past 8 mean the same: too many */
            total++;
        if (slot == &extra)
            zmq_msg_close(&extra);
        else
            m->nframes++;
    }
    if (total == 2 && zmq_msg_size(&m->frames[1]) == 0)
        return WIRE_PROBE;
    if (total == WIRE_FRAMES_MAX && max_frames == WIRE_FRAMES_MAX) {
        m->has_caller = 1;
        m->caller = zmq_msg_data(&m->frames[6]);
        m->caller_len = zmq_msg_size(&m->frames[6]);
    }
    else if (total != WIRE_FRAMES) {
        m->problem = "wrong number of frames (want 6: routing id, '', version, uuid, type, body)";
        return WIRE_MALFORMED;
    }
    zmq_msg_t *f = m->frames;
    if (zmq_msg_size(&f[1]) != 0) {
        m->problem = "second frame is not the empty delimiter";
        return WIRE_MALFORMED;
    }
    if (zmq_msg_size(&f[2]) != PSEUD_VERSION_LEN
        || memcmp(zmq_msg_data(&f[2]), PSEUD_VERSION, PSEUD_VERSION_LEN) != 0) {
        m->problem = "unsupported protocol version (want v1)";
        return WIRE_MALFORMED;
    }
    if (zmq_msg_size(&f[3]) > WIRE_MAX_UUID) {
        m->problem = "message id longer than 64 bytes";
        return WIRE_MALFORMED;
    }
    if (zmq_msg_size(&f[4]) != 1) {
        m->problem = "message type frame is not one byte";
        return WIRE_MALFORMED;
    }
    m->routing = zmq_msg_data(&f[0]);
    m->routing_len = zmq_msg_size(&f[0]);
    m->uuid = zmq_msg_data(&f[3]);
    m->uuid_len = zmq_msg_size(&f[3]);
    m->type = *(const char *)zmq_msg_data(&f[4]);
    m->body = zmq_msg_data(&f[5]);
    m->body_len = zmq_msg_size(&f[5]);
    m->user_id = zmq_msg_gets(&f[5], "User-Id");
    return WIRE_MESSAGE;
}

int
wire_recv(void *socket, wire_message *m)
{
    return recv_frames(socket, m, WIRE_FRAMES);
}

int
wire_recv_worker(void *socket, wire_message *m)
{
    return recv_frames(socket, m, WIRE_FRAMES_MAX);
}

void
wire_release(wire_message *m)
{
    for (int i = 0; i < m->nframes; i++)
        zmq_msg_close(&m->frames[i]);
    m->nframes = 0;
}
