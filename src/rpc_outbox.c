/* Getting messages out of an RPC: non-blocking sends, an outbox for
 * peers not reachable yet (EHOSTUNREACH) or not reading (EAGAIN) retried on
 * a short timer until each message's deadline, packing into a reused
 * buffer, and send_message() for plugins.
 *
 * Calls and replies never block their greenlet: a message that cannot
 * leave now waits in the outbox, (deadline, future or None, frames), and a
 * timer retries the whole outbox in order, every RETRY_FIRST seconds at
 * first, doubling up to RETRY_MAX while nothing moves. An entry leaves
 * when sent, when its deadline passes or when its call has ended
 * otherwise (the deadline timer of rpc_calls.c fails the call itself). */
#include "rpc_object.h"
#include "codec.h"
#include "errors.h"
#include "green.h"
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#define SMALL_BODY 4096     /* bodies up to this are copied, larger ones handed over */
#define RETRY_FIRST 0.002   /* outbox retry interval, doubling up to RETRY_MAX */
#define RETRY_MAX 0.05
#define OUTBOX_MAX_REPLIES 1000     /* replies held for peers that do not read */

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

static int
arm_retry_timer(RPCObject *self)
{
    if (self->retry_timer != NULL)
        return 0;
    self->retry_timer = green_timer(self->st, self->retry_interval, self->on_retry, NULL);
    return self->retry_timer == NULL ? -1 : 0;
}

int
rpc_outbox_push(RPCObject *self, double deadline, PyObject *future,
            PyObject *peer, PyObject *uuid, char type, const char *body, size_t body_len)
{
    PyObject *entry = Py_BuildValue("(dO(OOy#y#))", deadline, future ? future : Py_None,
                                    peer, uuid, &type, (Py_ssize_t)1,
                                    body, (Py_ssize_t)body_len);
    if (entry == NULL)
        return -1;
    int rc = PyList_Append(self->outbox, entry);
    Py_DECREF(entry);
    if (rc < 0)
        return -1;
    if (PyList_GET_SIZE(self->outbox) == 1)
        self->retry_interval = RETRY_FIRST;
    return arm_retry_timer(self);
}

int
rpc_send_or_queue(RPCObject *self, PyObject *peer, PyObject *uuid, char type,
              const char *body, size_t body_len, msgpack_sbuffer *steal,
              double deadline, PyObject *future)
{
    if (rpc_require_socket(self) < 0)
        return -1;
    int rc = rpc_try_send(self, PyBytes_AS_STRING(peer), PyBytes_GET_SIZE(peer),
                      PyBytes_AS_STRING(uuid), PyBytes_GET_SIZE(uuid), type,
                      body, body_len, steal);
    if (rc == 0) {
        rpc_after_io(self);
        return 0;
    }
    if (rc == 1)
        return rpc_outbox_push(self, deadline, future, peer, uuid, type, body, body_len);
    errors_raise_what(self->st, zmq_errno(), "sending a message");
    return -1;
}

void
rpc_send_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type,
               msgpack_sbuffer *body)
{
    int rc = rpc_try_send(self, PyBytes_AS_STRING(routing), PyBytes_GET_SIZE(routing),
                          PyBytes_AS_STRING(uuid), PyBytes_GET_SIZE(uuid), type,
                          body->data, body->size, body);
    if (rc == 0) {
        rpc_after_io(self);
    }
    else if (rc == 1 && zmq_errno() == EAGAIN
             && PyList_GET_SIZE(self->outbox) >= OUTBOX_MAX_REPLIES) {
        /* a peer that does not read must not make us hold its replies
         * without bound (libzmq already holds its SNDHWM) */
        pseud_log(self->st, "warning", "pseud: reply to %R dropped: it reads nothing "
                  "and %d replies wait already", routing, OUTBOX_MAX_REPLIES);
    }
    else if (rc == 1 && zmq_errno() == EAGAIN) {
        if (rpc_outbox_push(self, green_now() + self->timeout, NULL, routing, uuid, type,
                            body->data, body->size) < 0) {
            pseud_log(self->st, "error", "pseud: could not queue a reply");
            PyErr_Clear();
        }
    }
    else {
        pseud_log(self->st, "warning", "pseud: reply to %R dropped: %s",
                  routing, zmq_strerror(zmq_errno()));
    }
}

/* Timer: retry the outbox in order; entries past their deadline, or whose
 * call already ended, are dropped (the deadline timer fails the call). */
PyObject *
rpc_on_retry(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = (RPCObject *)op;
    green_watcher_close(self->retry_timer);
    Py_CLEAR(self->retry_timer);
    if (self->state == RPC_STOPPED || self->sock == NULL)
        Py_RETURN_NONE;
    double now = green_now();
    PyObject *keep = PyList_New(0);
    if (keep == NULL)
        return NULL;
    PyObject *entries = self->outbox;
    self->outbox = keep;
    int progressed = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        PyObject *entry = PyList_GET_ITEM(entries, i);
        double deadline = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(entry, 0));
        PyObject *future = PyTuple_GET_ITEM(entry, 1);
        PyObject *frames = PyTuple_GET_ITEM(entry, 2);
        if (deadline <= now || (future != Py_None && !future_is_pending(future)))
            continue;
        PyObject *peer = PyTuple_GET_ITEM(frames, 0), *uuid = PyTuple_GET_ITEM(frames, 1);
        PyObject *type = PyTuple_GET_ITEM(frames, 2), *body = PyTuple_GET_ITEM(frames, 3);
        int rc = rpc_try_send(self, PyBytes_AS_STRING(peer), PyBytes_GET_SIZE(peer),
                          PyBytes_AS_STRING(uuid), PyBytes_GET_SIZE(uuid),
                          PyBytes_AS_STRING(type)[0],
                          PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), NULL);
        if (rc == 0) {
            progressed = 1;
            continue;
        }
        if (rc < 0) {
            int err = zmq_errno();
            pseud_log(self->st, "warning", "pseud: dropped a queued message: %s",
                      zmq_strerror(err));
            if (future != Py_None) {
                PyObject *exc = PyObject_CallFunction(PyExc_ConnectionError, "s",
                                                      zmq_strerror(err));
                if (exc == NULL || future_set_exception(future, exc) < 0)
                    PyErr_Clear();
                Py_XDECREF(exc);
            }
            continue;
        }
        if (PyList_Append(keep, entry) < 0) {
            Py_DECREF(entries);
            return NULL;
        }
    }
    Py_DECREF(entries);
    rpc_after_io(self);
    if (PyList_GET_SIZE(self->outbox) > 0) {
        self->retry_interval = progressed ? RETRY_FIRST
                               : (self->retry_interval * 2 > RETRY_MAX ? RETRY_MAX
                                  : self->retry_interval * 2);
        if (arm_retry_timer(self) < 0)
            return NULL;
    }
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
                           green_now() + self->timeout, NULL);
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
