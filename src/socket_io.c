/* How a plugin Socket blocks without blocking the hub: the engine under
 * socket.c's methods.
 *
 * - Every libzmq send/recv is made with ZMQ_DONTWAIT. When it would block
 *   (EAGAIN) the greenlet parks (green_park) on a fresh gevent Waiter
 *   queued on the socket: recv_waiters (wants POLLIN), send_waiters (wants
 *   POLLOUT) or lock_waiters (wants the send side, see below). Queues are
 *   FIFO lists.
 * - The socket's fdwatch (fdwatch.c, which explains ZMQ_FD's edges) runs
 *   while there are io waiters; its callback, socket_on_ready, wakes the
 *   first recv waiter if POLLIN, the first send waiter if POLLOUT. Whoever
 *   sends or receives, and whoever leaves a queue without consuming what
 *   it was woken for (timeout, error, a different wait), calls
 *   socket_after_io(): fdwatch's rule. A woken greenlet simply retries its
 *   operation and parks again if needed, so spurious wake-ups are harmless.
 * - A stopped watch holds no reference to the socket: an idle socket keeps
 *   no hub watcher alive and is freed by reference counting.
 * - Multipart sends are atomic from the callers' point of view: a greenlet
 *   that has queued part of a message (it parks mid-message, or it called
 *   send(..., SNDMORE)) owns the send side (send_owner) until it queues the
 *   final frame; other senders wait on lock_waiters meanwhile. libzmq only
 *   applies the high-water mark on a message's first frame, so parking
 *   mid-message is rare; send(SNDMORE) across switches is the usual case.
 *   If a send fails mid-message the side is released anyway (libzmq cannot
 *   take frames back: the next message is appended to the partial one).
 * - close() wakes every queued greenlet from the hub; each sees `closed`
 *   and raises ZMQError(ENOTSOCK).
 * - ZMQ_RCVTIMEO / ZMQ_SNDTIMEO are read at the start of each blocking
 *   operation (>= 0: raise Again once that many ms have passed).
 * - Functions that can be on a greenlet's stack while it switches are
 *   marked GREEN_SWITCHES (see green.h). */
#include "socket_object.h"
#include "errors.h"
#include "green.h"

#include <errno.h>
#include <string.h>

static int
raise_closed(SocketObject *self)
{
    errors_raise(self->st, ENOTSOCK);
    return -1;
}

static int
raise_again(SocketObject *self)
{
    errors_raise(self->st, EAGAIN);
    return -1;
}

/* --------------------------------------------------------------- queues */

/* Remove `item` (by identity) from `list`. Never raises. */
static void
list_remove(PyObject *list, PyObject *item)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        if (PyList_GET_ITEM(list, i) == item) {
            if (PyList_SetSlice(list, i, i + 1, NULL) < 0)
                PyErr_Clear();
            return;
        }
    }
}

/* Pop the head of a list (new reference), or NULL if empty. */
static PyObject *
list_pop_first(PyObject *list)
{
    if (PyList_GET_SIZE(list) == 0)
        return NULL;
    PyObject *item = Py_NewRef(PyList_GET_ITEM(list, 0));
    if (PyList_SetSlice(list, 0, 1, NULL) < 0) {
        PyErr_Clear();
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

/* What the parked greenlets wait for: ZMQ_POLLIN and/or ZMQ_POLLOUT. */
static int
wanted_events(SocketObject *self)
{
    return (PyList_GET_SIZE(self->recv_waiters) > 0 ? ZMQ_POLLIN : 0)
           | (PyList_GET_SIZE(self->send_waiters) > 0 ? ZMQ_POLLOUT : 0);
}

/* --------------------------------------------------------- the fd watch */

GREEN_SWITCHES static PyObject *socket_on_ready(PyObject *op, PyObject *const *args,
                                                Py_ssize_t nargs);

static PyMethodDef on_ready_def = {
    "_on_ready", (PyCFunction)(void (*)(void))socket_on_ready, METH_FASTCALL, NULL};

static int
start_watching(SocketObject *self)
{
    if (self->watch.watching)
        return 0;
    PyObject *cb = PyCFunction_NewEx(&on_ready_def, (PyObject *)self, NULL);
    if (cb == NULL)
        return -1;
    int rc = fdwatch_start(&self->watch, cb);
    Py_DECREF(cb);
    return rc;
}

void
socket_after_io(SocketObject *self)
{
    if (!self->closed)
        fdwatch_after_io(&self->watch, wanted_events(self));
}

/* Wake the first greenlet waiting for the send side, if it is free. */
static void
wake_lock_waiter(SocketObject *self)
{
    if (self->send_owner != NULL)
        return;
    PyObject *w = list_pop_first(self->lock_waiters);
    if (w == NULL)
        return;
    PyObject *saved = errors_save();
    if (green_wake_later(self->st, w, Py_None) < 0) {
        pseud_log(self->st, "error", "pseud: could not wake a socket's sender");
        PyErr_Clear();
    }
    errors_restore(saved);
    Py_DECREF(w);
}

/* A woken greenlet leaves without using its turn: hand it on. */
static void
pass_baton(SocketObject *self)
{
    socket_after_io(self);
    wake_lock_waiter(self);
}

/* Wake `waiter` now (we are the hub); logs `who` if that fails. */
static void
switch_to(SocketObject *self, PyObject *waiter, const char *who)
{
    if (waiter == NULL)
        return;
    if (green_waiter_switch(waiter, Py_None) < 0) {
        pseud_log(self->st, "error", "pseud: could not wake a socket's %s", who);
        PyErr_Clear();
    }
    Py_DECREF(waiter);
}

/* The fd watch's callback (from the hub): wakes the first recv waiter if
 * POLLIN and the first send waiter if POLLOUT. */
GREEN_SWITCHES static PyObject *
socket_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    SocketObject *self = SOCK(op);
    Py_INCREF(self);
    if (self->closed) {
        fdwatch_stop(&self->watch);
        goto out;
    }
    int missed = 0;
    int events = fdwatch_fired(&self->watch, args, nargs, wanted_events(self), &missed);
    if (missed)
        pseud_log(self->st, "warning",
                  "pseud: a socket's waiter was woken by its safety timer (fd %d)",
                  self->watch.fd);
    PyObject *r = (events & ZMQ_POLLIN) ? list_pop_first(self->recv_waiters) : NULL;
    PyObject *s = (events & ZMQ_POLLOUT) ? list_pop_first(self->send_waiters) : NULL;
    switch_to(self, r, "receiver");
    switch_to(self, s, "sender");
    if (!self->closed && wanted_events(self) == 0)
        fdwatch_stop(&self->watch);
out:
    Py_DECREF(self);
    Py_RETURN_NONE;
}

void
socket_wake_all(SocketObject *self)
{
    PyObject *queues[] = {self->recv_waiters, self->send_waiters, self->lock_waiters};
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        PyObject *w;
        while (queues[i] != NULL && (w = list_pop_first(queues[i])) != NULL) {
            if (green_wake_later(self->st, w, Py_None) < 0) {
                pseud_log(self->st, "error",
                          "pseud: could not wake a greenlet of a closed socket");
                PyErr_Clear();
            }
            Py_DECREF(w);
        }
    }
}

/* ------------------------------------------------------------- parking */

enum { PARK_RETRY = 0, PARK_TIMEOUT = 1 };

/* Park the current greenlet on `queue` until woken or `deadline` (a
 * green_now() time; < 0: none). `io`: the queue is served by the fd watch
 * (recv_waiters or send_waiters). Returns PARK_RETRY (woken: try again),
 * PARK_TIMEOUT, or -1 with an exception (closed: ZMQError(ENOTSOCK); or
 * thrown into). */
GREEN_SWITCHES static int
park(SocketObject *self, PyObject *queue, int io, double deadline)
{
    if (self->closed)
        return raise_closed(self);
    double remaining = -1.0;
    if (deadline >= 0) {
        remaining = deadline - green_now();
        if (remaining <= 0) {
            pass_baton(self);
            return PARK_TIMEOUT;
        }
    }
    PyObject *waiter = green_waiter(self->st);
    if (waiter == NULL)
        return -1;
    int rc = -1;
    if (PyList_Append(queue, waiter) < 0)
        goto done;
    if (io) {
        if (start_watching(self) < 0)
            goto unlink;
        /* the failed attempt that brought us here was a libzmq call: the
         * rule of fdwatch.c applies to it too */
        socket_after_io(self);
    }
    rc = green_park(self->st, waiter, NULL, remaining);
unlink:
    list_remove(queue, waiter);
done:
    Py_DECREF(waiter);
    if (self->closed)
        return rc >= 0 ? raise_closed(self) : -1;
    if (rc != GREEN_WOKEN) {
        /* not woken by socket_on_ready: it will not stop the watch for us */
        if (wanted_events(self) == 0)
            fdwatch_stop(&self->watch);
        pass_baton(self);
    }
    if (rc < 0)
        return -1;
    return rc == GREEN_TIMED_OUT ? PARK_TIMEOUT : PARK_RETRY;
}

/* Deadline of an operation from ZMQ_RCVTIMEO/ZMQ_SNDTIMEO: -1 for none. */
static int
op_deadline(SocketObject *self, int option, double *deadline)
{
    int ms = -1;
    size_t len = sizeof(ms);
    if (zmq_getsockopt(self->handle, option, &ms, &len) != 0) {
        errors_raise_zmq(self->st);
        return -1;
    }
    *deadline = ms < 0 ? -1.0 : green_now() + ms / 1000.0;
    return 0;
}

/* ------------------------------------------------------------- sending */

static int
take_send_side(SocketObject *self)
{
    if (self->send_owner != NULL)
        return 0;
    self->send_owner = green_getcurrent(self->st);
    return self->send_owner == NULL ? -1 : 0;
}

/* Also called by senders that never owned the side: a greenlet woken from
 * lock_waiters may queue a whole message without taking the side, and must
 * then hand the wake-up on to the next one. */
static void
release_send_side(SocketObject *self)
{
    Py_CLEAR(self->send_owner);
    wake_lock_waiter(self);
}

/* Wait until the send side is free or ours. 1: it is ours already (we are
 * mid-message), 0: free, -1: error (Again when `nonblock` or timed out). */
GREEN_SWITCHES static int
acquire_send_side(SocketObject *self, int nonblock, double *deadline, int *have_deadline)
{
    if (self->send_owner == NULL)
        return 0;
    PyObject *cur = green_getcurrent(self->st);
    if (cur == NULL)
        return -1;
    int rc = 0;
    while (self->send_owner != NULL && self->send_owner != cur) {
        if (green_is_dead(self->send_owner)) {
            /* it died mid-message: end that message with an empty frame
             * (the peer drops it as malformed) rather than wait forever */
            pseud_log(self->st, "warning",
                      "pseud: a greenlet died in the middle of a multipart send; "
                      "its partial message was ended");
            zmq_send(self->handle, "", 0, ZMQ_DONTWAIT);
            release_send_side(self);
            continue;
        }
        if (nonblock) {
            rc = raise_again(self);
            break;
        }
        if (!*have_deadline) {
            if (op_deadline(self, ZMQ_SNDTIMEO, deadline) < 0) {
                rc = -1;
                break;
            }
            *have_deadline = 1;
        }
        int pr = park(self, self->lock_waiters, 0, *deadline);
        if (pr < 0 || pr == PARK_TIMEOUT) {
            rc = pr < 0 ? -1 : raise_again(self);
            break;
        }
    }
    if (rc == 0 && self->send_owner == cur)
        rc = 1;
    Py_DECREF(cur);
    return rc;
}

GREEN_SWITCHES int
socket_send_frames(SocketObject *self, Py_buffer *bufs, Py_ssize_t n, int flags)
{
    if (self->closed)
        return raise_closed(self);
    int nonblock = flags & ZMQ_DONTWAIT;
    int trailing_more = flags & ZMQ_SNDMORE;
    double deadline = -1.0;
    int have_deadline = 0;
    int mid = acquire_send_side(self, nonblock, &deadline, &have_deadline);
    if (mid < 0)
        return -1;
    Py_INCREF(self);
    Py_ssize_t i = 0;
    while (i < n) {
        if (self->closed) {
            raise_closed(self);
            goto fail;
        }
        int f = ZMQ_DONTWAIT | ((i + 1 < n || trailing_more) ? ZMQ_SNDMORE : 0);
        if (zmq_send(self->handle, bufs[i].buf, (size_t)bufs[i].len, f) >= 0) {
            i++;
            mid = 1;
            continue;
        }
        int err = zmq_errno();
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0)
                goto fail;
            continue;
        }
        if (err != EAGAIN) {
            errors_raise(self->st, err);
            goto fail;
        }
        if (nonblock && !mid) {
            raise_again(self);
            goto fail;
        }
        if (mid && take_send_side(self) < 0)
            goto fail;
        if (!have_deadline) {
            if (op_deadline(self, ZMQ_SNDTIMEO, &deadline) < 0)
                goto fail;
            have_deadline = 1;
        }
        int pr = park(self, self->send_waiters, 1, deadline);
        if (pr < 0)
            goto fail;
        if (pr == PARK_TIMEOUT) {
            raise_again(self);
            goto fail;
        }
        if (!mid) {
            /* someone may have started a message while we waited */
            int m = acquire_send_side(self, nonblock, &deadline, &have_deadline);
            if (m < 0)
                goto fail;
            mid = m;
        }
    }
    if (trailing_more) {
        if (take_send_side(self) < 0)
            goto fail;
    }
    else {
        release_send_side(self);
    }
    socket_after_io(self);
    Py_DECREF(self);
    return 0;
fail:
    /* libzmq cannot take queued frames back: free the side anyway (when
     * not mid-message, the side is free or someone else's) */
    if (mid)
        release_send_side(self);
    pass_baton(self);
    Py_DECREF(self);
    return -1;
}

/* ----------------------------------------------------------- receiving */

GREEN_SWITCHES int
socket_recv_frame(SocketObject *self, zmq_msg_t *msg, int flags, double *deadline,
                  int *have_deadline)
{
    for (;;) {
        if (self->closed)
            return raise_closed(self);
        if (zmq_msg_recv(msg, self->handle, ZMQ_DONTWAIT) >= 0)
            return 0;
        int err = zmq_errno();
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0)
                return -1;
            continue;
        }
        if (err != EAGAIN) {
            errors_raise(self->st, err);
            return -1;
        }
        if (flags & ZMQ_DONTWAIT)
            return raise_again(self);
        if (!*have_deadline) {
            if (op_deadline(self, ZMQ_RCVTIMEO, deadline) < 0)
                return -1;
            *have_deadline = 1;
        }
        int pr = park(self, self->recv_waiters, 1, *deadline);
        if (pr < 0)
            return -1;
        if (pr == PARK_TIMEOUT)
            return raise_again(self);
    }
}

GREEN_SWITCHES PyObject *
socket_recv_message(SocketObject *self, int flags, int copy)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    double deadline = -1.0;
    int have_deadline = 0;
    Py_INCREF(self);
    zmq_msg_t msg;
    for (;;) {
        zmq_msg_init(&msg);
        /* after the first frame the rest of the message is already there
         * (libzmq delivers messages whole), so only the first one waits */
        if (socket_recv_frame(self, &msg, flags, &deadline, &have_deadline) < 0) {
            zmq_msg_close(&msg);
            Py_CLEAR(list);
            break;
        }
        int more = zmq_msg_more(&msg);
        PyObject *item = frame_or_bytes(self->st, &msg, copy);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            /* drop the rest of the message */
            while (more && self->handle != NULL) {
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, self->handle, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                more = zmq_msg_more(&msg);
                zmq_msg_close(&msg);
            }
            break;
        }
        Py_DECREF(item);
        if (!more)
            break;
        flags &= ~ZMQ_DONTWAIT;
    }
    socket_after_io(self);
    Py_DECREF(self);
    return list;
}

GREEN_SWITCHES int
socket_wait_events(SocketObject *self, int flags, double deadline)
{
    Py_INCREF(self);
    int res = -1;
    for (;;) {
        if (socket_require_open(self) < 0)
            break;
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(self->handle, ZMQ_EVENTS, &events, &len) != 0) {
            errors_raise_zmq(self->st);
            break;
        }
        if ((events & flags) || !(flags & (ZMQ_POLLIN | ZMQ_POLLOUT))) {
            socket_after_io(self);
            res = events & flags;
            break;
        }
        PyObject *queue = (flags & ZMQ_POLLIN) ? self->recv_waiters : self->send_waiters;
        int pr = park(self, queue, 1, deadline);
        if (pr < 0)
            break;
        if (pr == PARK_TIMEOUT) {
            res = 0;
            break;
        }
    }
    Py_DECREF(self);
    return res;
}

/* ------------------------------------------------------------- creation */

SocketObject *
socket_alloc(pseud_state *st, void *handle, int owned)
{
    SocketObject *self = PyObject_GC_New(SocketObject, st->Socket_Type);
    if (self == NULL)
        return NULL;
    self->st = st;
    self->handle = handle;
    self->owned = owned;
    self->closed = 0;
    self->watch.io = self->watch.safety = self->watch.cb = NULL;
    self->send_owner = NULL;
    self->weakreflist = NULL;
    memset(self->shadow, 0, sizeof(self->shadow));
    memset(self->shadow_set, 0, sizeof(self->shadow_set));
    self->recv_waiters = PyList_New(0);
    self->send_waiters = PyList_New(0);
    self->lock_waiters = PyList_New(0);
    PyObject_GC_Track(self);
    if (self->recv_waiters == NULL || self->send_waiters == NULL || self->lock_waiters == NULL
        || fdwatch_init(&self->watch, st, handle) < 0) {
        self->handle = NULL;    /* the caller still owns it */
        Py_DECREF(self);
        return NULL;
    }
    return self;
}
