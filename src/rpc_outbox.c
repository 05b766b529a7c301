/* Getting messages out of an RPC: non-blocking sends, an outbox for
 * peers not reachable yet (EHOSTUNREACH) or not reading (EAGAIN) retried on
 * a timer until each message's deadline, packing into a reused buffer, and
 * send_message() for plugins.
 *
 * Calls and replies never block their greenlet: a message that cannot
 * leave now waits in its peer's queue in the outbox, in order. Waiting
 * must cost nothing however many messages wait (100,000 calls made before
 * their server is up): the timer tries only the head of each queue, once,
 * and the rest wait behind it; a peer that refuses is tried again after
 * RETRY_FIRST seconds, doubling up to RETRY_MAX while it keeps refusing.
 * Once the head goes out, the queue drains in order until the peer
 * refuses again (at most OUTBOX_BATCH messages a tick, then the hub runs
 * others). A message leaves when sent, when its deadline passes or when
 * its call has ended otherwise (the deadline timer of rpc_calls.c fails
 * the call itself); all messages of an RPC have the same timeout, so
 * deadlines come in queue order and expired ones leave from the head. */
#include "rpc_object.h"
#include "codec.h"
#include "errors.h"
#include "log_limit.h"
#include "green.h"
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#define SMALL_BODY 4096     /* bodies up to this are copied, larger ones handed over */
#define RETRY_FIRST 0.002   /* outbox retry interval, doubling up to RETRY_MAX */
#define RETRY_MAX 0.05
#define OUTBOX_MAX_REPLIES 1000     /* replies held for a peer that does not read */
#define OUTBOX_BATCH 4096           /* messages sent per tick before yielding */

/* A message waiting: its frames but the routing id (its queue's). */
typedef struct outbox_msg {
    struct outbox_msg *next;
    double deadline;
    PyObject *future;           /* the call's PendingCall, or NULL (a reply...) */
    char type;
    size_t uuid_len, body_len;
    char data[];                /* uuid, then body */
} outbox_msg;

/* The messages waiting for one peer, oldest first. */
struct outbox_queue {
    outbox_queue *next;         /* the RPC's queues, oldest first */
    PyObject *peer;             /* routing id (bytes) */
    outbox_msg *head, *tail;
    Py_ssize_t replies;         /* messages without a call: bounded */
    double next_try, interval;  /* when to try the head again, and the backoff */
};

/* --------------------------------------------------------------- sending */

static void
free_body(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* A frame after the routing frame failed (ETERM, ENOMEM: never EAGAIN
 * with ROUTER_MANDATORY): end the message with an empty frame so the next
 * one does not continue it (the peer drops it as malformed). Returns -1
 * with errno as it was. */
static int
abandon_message(void *s)
{
    int err = zmq_errno();
    zmq_send(s, "", 0, ZMQ_DONTWAIT);
    errno = err;
    return -1;
}

/* 1 "not now" is EAGAIN or EHOSTUNREACH on the routing frame, before
 * anything was queued. */
int
rpc_try_send(RPCObject *self, const char *peer, size_t peer_len,
         const char *uuid, size_t uuid_len, char type,
         const char *body, size_t body_len, msgpack_sbuffer *steal)
{
    void *s = self->sock;
    if (zmq_send(s, peer, peer_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        int err = zmq_errno();
        if (err == EAGAIN || err == EHOSTUNREACH)
            return 1;
        return -1;
    }
    if (zmq_send(s, "", 0, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0
        || zmq_send(s, PSEUD_VERSION, PSEUD_VERSION_LEN, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0
        || zmq_send(s, uuid, uuid_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0
        || zmq_send(s, &type, 1, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return abandon_message(s);
    if (steal != NULL && body_len > SMALL_BODY && body == steal->data) {
        zmq_msg_t msg;
        if (zmq_msg_init_data(&msg, steal->data, body_len, free_body, NULL) != 0)
            return abandon_message(s);
        msgpack_sbuffer_release(steal);   /* the message owns the bytes now */
        if (zmq_msg_send(&msg, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return abandon_message(s);
        }
        return 0;
    }
    if (zmq_send(s, body, body_len, ZMQ_DONTWAIT) < 0)
        return abandon_message(s);
    return 0;
}

/* ------------------------------------------------------------ the outbox */

int
rpc_outbox_init(RPCObject *self)
{
    self->outbox.by_peer = PyDict_New();
    return self->outbox.by_peer == NULL ? -1 : 0;
}

static void
free_msg(RPCObject *self, outbox_queue *q, outbox_msg *m)
{
    if (m->future == NULL)
        q->replies--;
    Py_XDECREF(m->future);
    PyMem_Free(m);
    self->outbox.size--;
}

/* Take the head of `q` out and free it. */
static void
pop_head(RPCObject *self, outbox_queue *q)
{
    outbox_msg *m = q->head;
    q->head = m->next;
    if (q->head == NULL)
        q->tail = NULL;
    free_msg(self, q, m);
}

static void
free_queue(RPCObject *self, outbox_queue *q)
{
    while (q->head != NULL)
        pop_head(self, q);
    Py_DECREF(q->peer);
    PyMem_Free(q);
}

void
rpc_outbox_drop_all(RPCObject *self)
{
    outbox_queue *q = self->outbox.first;
    self->outbox.first = NULL;
    while (q != NULL) {
        outbox_queue *next = q->next;
        free_queue(self, q);
        q = next;
    }
    if (self->outbox.by_peer != NULL)
        PyDict_Clear(self->outbox.by_peer);
}

int
rpc_outbox_traverse(RPCObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->outbox.by_peer);
    for (outbox_queue *q = self->outbox.first; q != NULL; q = q->next)
        for (outbox_msg *m = q->head; m != NULL; m = m->next)
            Py_VISIT(m->future);
    return 0;
}

void
rpc_outbox_clear(RPCObject *self)
{
    rpc_outbox_drop_all(self);
    Py_CLEAR(self->outbox.by_peer);
}

/* The queue of `peer`, or NULL (no exception) when nothing waits for it. */
static outbox_queue *
queue_of(RPCObject *self, PyObject *peer)
{
    if (self->outbox.first == NULL)
        return NULL;
    PyObject *cap = PyDict_GetItemWithError(self->outbox.by_peer, peer);
    if (cap == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return PyCapsule_GetPointer(cap, NULL);
}

/* The calls waiting in `peer`'s queue (they never left), as a set of
 * their addresses (PyLong_FromVoidPtr): a lost connection fails only the
 * calls that went out on it (rpc_calls.c: rpc_fail_calls_to). */
PyObject *
rpc_outbox_calls_of(RPCObject *self, PyObject *peer)
{
    PyObject *set = PySet_New(NULL);
    if (set == NULL)
        return NULL;
    outbox_queue *q = queue_of(self, peer);
    for (outbox_msg *m = q != NULL ? q->head : NULL; m != NULL; m = m->next) {
        if (m->future == NULL)
            continue;
        PyObject *key = PyLong_FromVoidPtr(m->future);
        if (key == NULL || PySet_Add(set, key) < 0) {
            Py_XDECREF(key);
            Py_DECREF(set);
            return NULL;
        }
        Py_DECREF(key);
    }
    return set;
}

static outbox_queue *
new_queue(RPCObject *self, PyObject *peer, double now)
{
    outbox_queue *q = PyMem_Calloc(1, sizeof(*q));
    if (q == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *cap = PyCapsule_New(q, NULL, NULL);
    if (cap == NULL || PyDict_SetItem(self->outbox.by_peer, peer, cap) < 0) {
        Py_XDECREF(cap);
        PyMem_Free(q);
        return NULL;
    }
    Py_DECREF(cap);
    q->peer = Py_NewRef(peer);
    q->interval = RETRY_FIRST;
    q->next_try = now + RETRY_FIRST;
    outbox_queue **end = &self->outbox.first;
    while (*end != NULL)
        end = &(*end)->next;
    *end = q;
    return q;
}

/* Unlink `q` (at *link) from the RPC and free it. */
static void
remove_queue(RPCObject *self, outbox_queue **link)
{
    outbox_queue *q = *link;
    *link = q->next;
    if (PyDict_DelItem(self->outbox.by_peer, q->peer) < 0)
        PyErr_Clear();
    free_queue(self, q);
}

/* Have the timer fire at `when` at the latest. 0 / -1. */
static int
arm_retry_timer(RPCObject *self, double when, double now)
{
    if (self->retry_timer != NULL) {
        if (self->retry_at <= when)
            return 0;
        green_watcher_close(self->retry_timer);
        Py_CLEAR(self->retry_timer);
    }
    self->retry_timer = green_timer(self->st, when - now, self->on_retry, NULL);
    self->retry_at = when;
    return self->retry_timer == NULL ? -1 : 0;
}

int
rpc_outbox_push(RPCObject *self, double deadline, PyObject *future,
            PyObject *peer, PyObject *uuid, char type, const char *body, size_t body_len)
{
    double now = green_now();
    outbox_queue *q = queue_of(self, peer);
    if (q == NULL && (q = new_queue(self, peer, now)) == NULL)
        return -1;
    size_t uuid_len = (size_t)PyBytes_GET_SIZE(uuid);
    if (body_len > PY_SSIZE_T_MAX - sizeof(outbox_msg) - uuid_len) {
        PyErr_NoMemory();
        return -1;
    }
    outbox_msg *m = PyMem_Malloc(sizeof(outbox_msg) + uuid_len + body_len);
    if (m == NULL) {
        PyErr_NoMemory();
        return -1;     /* an empty new queue goes at the next tick */
    }
    m->next = NULL;
    m->deadline = deadline;
    m->future = Py_XNewRef(future);
    m->type = type;
    m->uuid_len = uuid_len;
    m->body_len = body_len;
    memcpy(m->data, PyBytes_AS_STRING(uuid), uuid_len);
    if (body_len)
        memcpy(m->data + uuid_len, body, body_len);
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    if (future == NULL)
        q->replies++;
    self->outbox.size++;
    return arm_retry_timer(self, q->next_try, now);
}

int
rpc_send_or_queue(RPCObject *self, PyObject *peer, PyObject *uuid, char type,
              const char *body, size_t body_len, msgpack_sbuffer *steal,
              double deadline, PyObject *future, int wait_unreachable)
{
    if (rpc_require_socket(self) < 0)
        return -1;
    /* behind what already waits for that peer: order is kept per peer */
    if (queue_of(self, peer) != NULL)
        return rpc_outbox_push(self, deadline, future, peer, uuid, type, body, body_len);
    int rc = rpc_try_send(self, PyBytes_AS_STRING(peer), PyBytes_GET_SIZE(peer),
                      PyBytes_AS_STRING(uuid), PyBytes_GET_SIZE(uuid), type,
                      body, body_len, steal);
    if (rc == 0) {
        rpc_after_io(self);
        return 0;
    }
    if (rc == 1 && !wait_unreachable && zmq_errno() == EHOSTUNREACH)
        return 1;
    if (rc == 1)
        return rpc_outbox_push(self, deadline, future, peer, uuid, type, body, body_len);
    errors_raise_what(self->st, zmq_errno(), "sending a message");
    return -1;
}

static void
queue_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type,
            msgpack_sbuffer *body)
{
    if (rpc_outbox_push(self, green_now() + self->timeout, NULL, routing, uuid, type,
                        body->data, body->size) < 0) {
        pseud_log(self->st, "error", "pseud: could not queue a reply");
        PyErr_Clear();
    }
}

void
rpc_send_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type,
               msgpack_sbuffer *body)
{
    outbox_queue *q = queue_of(self, routing);
    if (q != NULL && q->replies >= OUTBOX_MAX_REPLIES) {
        /* a peer that does not read must not make us hold its replies
         * without bound (libzmq already holds its SNDHWM) */
        pseud_log_limited(self->st, LOG_REPLY_DROPPED, "pseud: reply to %R dropped: it "
                          "reads nothing and %d replies wait already",
                          routing, OUTBOX_MAX_REPLIES);
        return;
    }
    if (q != NULL) {
        queue_reply(self, routing, uuid, type, body);
        return;
    }
    int rc = rpc_try_send(self, PyBytes_AS_STRING(routing), PyBytes_GET_SIZE(routing),
                          PyBytes_AS_STRING(uuid), PyBytes_GET_SIZE(uuid), type,
                          body->data, body->size, body);
    if (rc == 0)
        rpc_after_io(self);
    else if (rc == 1 && zmq_errno() == EAGAIN)
        queue_reply(self, routing, uuid, type, body);
    else
        pseud_log_limited(self->st, LOG_REPLY_DROPPED, "pseud: reply to %R dropped: %s",
                          routing, zmq_strerror(zmq_errno()));
}

/* A queued message could not be sent for good (ETERM, ENOMEM...): log it
 * and fail its call. May run Python code (a log handler). */
static void
drop_failed(RPCObject *self, PyObject *future, int err)
{
    pseud_log_limited(self->st, LOG_QUEUED_DROPPED, "pseud: dropped a queued message: %s",
                      zmq_strerror(err));
    if (future != NULL) {
        PyObject *exc = PyObject_CallFunction(PyExc_ConnectionError, "s", zmq_strerror(err));
        if (exc == NULL || future_set_exception(future, exc) < 0)
            PyErr_Clear();
        Py_XDECREF(exc);
    }
}

/* Try the queue `q` if due: drop what expired at its head, then send from
 * the head until the peer refuses or the tick's `budget` is spent.
 * Returns 0, or 1 when the RPC stopped meanwhile (a log handler's doing:
 * every queue is gone then). */
static int
drain(RPCObject *self, outbox_queue *q, double now, Py_ssize_t *budget)
{
    if (q->next_try > now)
        return 0;
    int sent = 0, refused = 0;
    while (q->head != NULL) {
        outbox_msg *m = q->head;
        if (m->deadline <= now || (m->future != NULL && !future_is_pending(m->future))) {
            pop_head(self, q);
            continue;
        }
        if (*budget <= 0)
            break;
        --*budget;
        int rc = rpc_try_send(self, PyBytes_AS_STRING(q->peer), PyBytes_GET_SIZE(q->peer),
                              m->data, m->uuid_len, m->type,
                              m->data + m->uuid_len, m->body_len, NULL);
        if (rc == 1) {
            refused = 1;
            break;
        }
        if (rc == 0) {
            sent = 1;
            pop_head(self, q);
            continue;
        }
        int err = zmq_errno();
        PyObject *future = Py_XNewRef(m->future);
        pop_head(self, q);
        drop_failed(self, future, err);
        Py_XDECREF(future);
        if (self->state == RPC_STOPPED)
            return 1;
    }
    /* refused at once: back off; refused after some went out, or out of
     * budget: soon again */
    if (refused && !sent)
        q->interval = q->interval * 2 > RETRY_MAX ? RETRY_MAX : q->interval * 2;
    else
        q->interval = RETRY_FIRST;
    q->next_try = now + q->interval;
    return 0;
}

/* Timer: try each queue that is due (see the top of the file). */
PyObject *
rpc_on_retry(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = (RPCObject *)op;
    green_watcher_close(self->retry_timer);
    Py_CLEAR(self->retry_timer);
    if (self->state == RPC_STOPPED || self->sock == NULL)
        Py_RETURN_NONE;
    double now = green_now(), next = -1.0;
    Py_ssize_t budget = OUTBOX_BATCH;
    outbox_queue **link = &self->outbox.first;
    while (*link != NULL) {
        outbox_queue *q = *link;
        if (drain(self, q, now, &budget))
            Py_RETURN_NONE;
        if (q->head == NULL) {
            remove_queue(self, link);
            continue;
        }
        if (next < 0 || q->next_try < next)
            next = q->next_try;
        link = &q->next;
    }
    rpc_after_io(self);
    if (next >= 0 && arm_retry_timer(self, next, now) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A pack function (a translation table's) may switch greenlets mid-pack
 * and another send come meanwhile: it gets `local` then. */
msgpack_sbuffer *
rpc_pack_body(RPCObject *self, PyObject *obj, msgpack_sbuffer *local)
{
    return rpc_pack_call(self, NULL, obj, NULL, local);
}

msgpack_sbuffer *
rpc_pack_call(RPCObject *self, PyObject *name, PyObject *args, PyObject *kwargs,
              msgpack_sbuffer *local)
{
    msgpack_sbuffer *buf = local;
    int own = 0;
    if (!self->sbuf_busy) {
        buf = &self->sbuf;
        buf->size = 0;
        self->sbuf_busy = own = 1;
    }
    int rc = name == NULL ? codec_pack(self->packer, args, buf)
                          : codec_pack_call(self->packer, name, args, kwargs, buf);
    if (own)
        self->sbuf_busy = 0;
    return rc < 0 ? NULL : buf;
}

/* send_message(frames): what plugins use to speak the protocol (HEARTBEAT,
 * HELLO, AUTHENTICATED...). A six-frame pseud message whose peer is not
 * reachable yet waits in the outbox like a call; anything else goes out
 * as it is or fails. */
PyObject *
rpc_send_message(PyObject *op, PyObject *frames_in)
{
    RPCObject *self = (RPCObject *)op;
    if (rpc_require_socket(self) < 0)
        return NULL;
    PyObject *given = PySequence_Fast(frames_in, "pseud: send_message() takes a list of frames");
    if (given == NULL)
        return NULL;
    /* A list of bytes this function owns: plugins pass peer_routing_id,
     * which reads back as str when it was given as str. */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(given);
    PyObject *frames = PyList_New(n);
    if (frames == NULL) {
        Py_DECREF(given);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *frame = convert_frame(PySequence_Fast_GET_ITEM(given, i), i);
        if (frame == NULL) {
            Py_DECREF(frames);
            Py_DECREF(given);
            return NULL;
        }
        PyList_SET_ITEM(frames, i, frame);
    }
    Py_DECREF(given);
    PyObject **items = PySequence_Fast_ITEMS(frames);
    int rc;
    if (n == WIRE_FRAMES && PyBytes_GET_SIZE(items[1]) == 0 && PyBytes_GET_SIZE(items[4]) == 1
        && PyBytes_GET_SIZE(items[2]) == PSEUD_VERSION_LEN
        && memcmp(PyBytes_AS_STRING(items[2]), PSEUD_VERSION, PSEUD_VERSION_LEN) == 0) {
        rc = rpc_send_or_queue(self, items[0], items[3], PyBytes_AS_STRING(items[4])[0],
                           PyBytes_AS_STRING(items[5]), PyBytes_GET_SIZE(items[5]), NULL,
                           green_now() + self->timeout, NULL, 1);
    }
    else {
        rc = 0;
        for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
            int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
            if (zmq_send(self->sock, PyBytes_AS_STRING(items[i]), PyBytes_GET_SIZE(items[i]), flags) < 0) {
                if (i > 0)
                    abandon_message(self->sock);
                errors_raise_what(self->st, zmq_errno(), "send_message");
                rc = -1;
            }
        }
        if (rc == 0)
            rpc_after_io(self);
    }
    Py_DECREF(frames);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}
