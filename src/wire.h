/* Wire protocol v1 (docs/protocol.rst): receive and check one multipart
 * message. No Python objects here: the frames stay libzmq's until released. */
#ifndef PSEUD_WIRE_H
#define PSEUD_WIRE_H

#include <stddef.h>
#include <zmq.h>

/* Message types (the fifth frame), as one-byte strings: PSEUD_WORK[0]. */
#define PSEUD_VERSION "v1"
#define PSEUD_VERSION_LEN 2
#define PSEUD_OK "\x01"
#define PSEUD_HELLO "\x02"
#define PSEUD_WORK "\x03"
#define PSEUD_AUTHENTICATED "\x04"
#define PSEUD_HEARTBEAT "\x06"
#define PSEUD_ERROR "\x10"
#define PSEUD_UNAUTHORIZED "\x11"

#define WIRE_FRAMES 6          /* routing id, '', version, uuid, type, body */
#define WIRE_FRAMES_MAX 7      /* + the caller's user id, from a broker to its workers */
#define WIRE_MAX_UUID 64

/* What wire_recv found: distinct from the message types above. */
enum {
    WIRE_MESSAGE = 0,       /* a well-formed message: the fields below are set */
    WIRE_PROBE = 1,    /* [routing id, ''] sent by upstream clients on connect */
    WIRE_MALFORMED = 2,      /* malformed: `problem` says why; release it and go on */
    WIRE_NOTHING = 3,    /* nothing to read now */
    WIRE_FAILED = 4,    /* the socket failed: zmq_errno() says why */
};

typedef struct {
    zmq_msg_t frames[WIRE_FRAMES_MAX];
    int nframes;               /* frames held (to release) */
    const char *routing;  size_t routing_len;
    const char *uuid;     size_t uuid_len;
    char type;
    const char *body;     size_t body_len;
    const char *user_id;       /* ZAP User-Id of the message, or NULL */
    int has_caller;            /* a 7th frame came (wire_recv_worker only): */
    const char *caller;   size_t caller_len;   /* the broker's caller's user id */
    const char *problem;       /* static text when WIRE_MALFORMED */
} wire_message;

/* Receive one whole message without blocking. Frames past the sixth are
 * read and discarded. Unless WIRE_NOTHING/WIRE_FAILED is returned before any
 * frame, call wire_release afterwards. */
int wire_recv(void *socket, wire_message *m);

/* As wire_recv, for a Server in worker mode: a 7th frame, the user id of
 * the broker's caller (docs/guide/scaling.rst), is accepted and kept. */
int wire_recv_worker(void *socket, wire_message *m);

void wire_release(wire_message *m);

#endif
