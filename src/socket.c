/* pyzmq-like sockets for plugins (see socket.h).
 *
 * Design notes
 * - Every libzmq send/recv is made with ZMQ_DONTWAIT. When it would block
 *   (EAGAIN) the greenlet parks on a fresh gevent Waiter queued on the
 *   socket: recv_waiters (wants POLLIN), send_waiters (wants POLLOUT) or
 *   lock_waiters (wants the send side, see below). Queues are FIFO lists.
 * - ZMQ_FD is edge-triggered: it only says "the socket's state may have
 *   changed", and any zmq call on the socket (send, recv, ZMQ_EVENTS) can
 *   consume that edge. So an io watcher on ZMQ_FD runs while someone waits
 *   on the socket; its callback (sock_on_ready, from the hub) reads
 *   ZMQ_EVENTS and wakes the first recv waiter if POLLIN, the first send
 *   waiter if POLLOUT. Whoever sends or receives, and whoever leaves a
 *   queue without consuming what it was woken for (timeout, error, a
 *   different wait), calls after_io(): it re-reads ZMQ_EVENTS and, if a
 *   queued waiter's event is ready, schedules sock_on_ready on the hub.
 *   A woken greenlet simply retries its operation and parks again if
 *   needed, so spurious wake-ups are harmless.
 * - The watcher only runs while there are io waiters (it is stopped by the
 *   callback or by the last waiter leaving otherwise): a stopped watcher
 *   holds no reference to the socket, an idle socket keeps no hub watcher
 *   alive and is freed by reference counting.
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
 *   marked GREEN_SWITCHES (see green.h).
 */
#include "socket.h"
#include "green.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>
#include <zmq.h>

/* PyLong_AsInt is public only from Python 3.13 */
static int
long_as_int(PyObject *obj)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit in a C int");
        return -1;
    }
    return (int)v;
}

/* ------------------------------------------------------------ options */

enum { OPT_INT, OPT_INT64, OPT_BYTES, OPT_STR, OPT_KEY };
enum { ACC_R = 1, ACC_W = 2, ACC_RW = 3 };

typedef struct {
    const char *attr;       /* attribute name (lower case) */
    const char *constant;   /* module constant (upper case) */
    int option;             /* ZMQ_* */
    int type;               /* OPT_* */
    int access;             /* ACC_*: libzmq can get (R) / set (W) it */
} sockopt_def;

/* attr, CONSTANT, ZMQ option, type, access. Write-only int options keep a
 * shadow of the value set through this object so that they read back. */
#define SOCKOPTS(X) \
    X(affinity, AFFINITY, ZMQ_AFFINITY, OPT_INT64, ACC_RW) \
    X(routing_id, ROUTING_ID, ZMQ_ROUTING_ID, OPT_BYTES, ACC_RW) \
    X(identity, IDENTITY, ZMQ_IDENTITY, OPT_BYTES, ACC_RW) \
    X(subscribe, SUBSCRIBE, ZMQ_SUBSCRIBE, OPT_BYTES, ACC_W) \
    X(unsubscribe, UNSUBSCRIBE, ZMQ_UNSUBSCRIBE, OPT_BYTES, ACC_W) \
    X(rate, RATE, ZMQ_RATE, OPT_INT, ACC_RW) \
    X(recovery_ivl, RECOVERY_IVL, ZMQ_RECOVERY_IVL, OPT_INT, ACC_RW) \
    X(sndbuf, SNDBUF, ZMQ_SNDBUF, OPT_INT, ACC_RW) \
    X(rcvbuf, RCVBUF, ZMQ_RCVBUF, OPT_INT, ACC_RW) \
    X(rcvmore, RCVMORE, ZMQ_RCVMORE, OPT_INT, ACC_R) \
    X(fd, FD, ZMQ_FD, OPT_INT, ACC_R) \
    X(events, EVENTS, ZMQ_EVENTS, OPT_INT, ACC_R) \
    X(type, TYPE, ZMQ_TYPE, OPT_INT, ACC_R) \
    X(linger, LINGER, ZMQ_LINGER, OPT_INT, ACC_RW) \
    X(reconnect_ivl, RECONNECT_IVL, ZMQ_RECONNECT_IVL, OPT_INT, ACC_RW) \
    X(backlog, BACKLOG, ZMQ_BACKLOG, OPT_INT, ACC_RW) \
    X(reconnect_ivl_max, RECONNECT_IVL_MAX, ZMQ_RECONNECT_IVL_MAX, OPT_INT, ACC_RW) \
    X(maxmsgsize, MAXMSGSIZE, ZMQ_MAXMSGSIZE, OPT_INT64, ACC_RW) \
    X(sndhwm, SNDHWM, ZMQ_SNDHWM, OPT_INT, ACC_RW) \
    X(rcvhwm, RCVHWM, ZMQ_RCVHWM, OPT_INT, ACC_RW) \
    X(multicast_hops, MULTICAST_HOPS, ZMQ_MULTICAST_HOPS, OPT_INT, ACC_RW) \
    X(rcvtimeo, RCVTIMEO, ZMQ_RCVTIMEO, OPT_INT, ACC_RW) \
    X(sndtimeo, SNDTIMEO, ZMQ_SNDTIMEO, OPT_INT, ACC_RW) \
    X(last_endpoint, LAST_ENDPOINT, ZMQ_LAST_ENDPOINT, OPT_STR, ACC_R) \
    X(router_mandatory, ROUTER_MANDATORY, ZMQ_ROUTER_MANDATORY, OPT_INT, ACC_W) \
    X(tcp_keepalive, TCP_KEEPALIVE, ZMQ_TCP_KEEPALIVE, OPT_INT, ACC_RW) \
    X(tcp_keepalive_cnt, TCP_KEEPALIVE_CNT, ZMQ_TCP_KEEPALIVE_CNT, OPT_INT, ACC_RW) \
    X(tcp_keepalive_idle, TCP_KEEPALIVE_IDLE, ZMQ_TCP_KEEPALIVE_IDLE, OPT_INT, ACC_RW) \
    X(tcp_keepalive_intvl, TCP_KEEPALIVE_INTVL, ZMQ_TCP_KEEPALIVE_INTVL, OPT_INT, ACC_RW) \
    X(immediate, IMMEDIATE, ZMQ_IMMEDIATE, OPT_INT, ACC_RW) \
    X(xpub_verbose, XPUB_VERBOSE, ZMQ_XPUB_VERBOSE, OPT_INT, ACC_W) \
    X(router_raw, ROUTER_RAW, ZMQ_ROUTER_RAW, OPT_INT, ACC_W) \
    X(ipv6, IPV6, ZMQ_IPV6, OPT_INT, ACC_RW) \
    X(mechanism, MECHANISM, ZMQ_MECHANISM, OPT_INT, ACC_R) \
    X(plain_server, PLAIN_SERVER, ZMQ_PLAIN_SERVER, OPT_INT, ACC_RW) \
    X(plain_username, PLAIN_USERNAME, ZMQ_PLAIN_USERNAME, OPT_STR, ACC_RW) \
    X(plain_password, PLAIN_PASSWORD, ZMQ_PLAIN_PASSWORD, OPT_STR, ACC_RW) \
    X(curve_server, CURVE_SERVER, ZMQ_CURVE_SERVER, OPT_INT, ACC_RW) \
    X(curve_publickey, CURVE_PUBLICKEY, ZMQ_CURVE_PUBLICKEY, OPT_KEY, ACC_RW) \
    X(curve_secretkey, CURVE_SECRETKEY, ZMQ_CURVE_SECRETKEY, OPT_KEY, ACC_RW) \
    X(curve_serverkey, CURVE_SERVERKEY, ZMQ_CURVE_SERVERKEY, OPT_KEY, ACC_RW) \
    X(probe_router, PROBE_ROUTER, ZMQ_PROBE_ROUTER, OPT_INT, ACC_W) \
    X(req_correlate, REQ_CORRELATE, ZMQ_REQ_CORRELATE, OPT_INT, ACC_W) \
    X(req_relaxed, REQ_RELAXED, ZMQ_REQ_RELAXED, OPT_INT, ACC_W) \
    X(conflate, CONFLATE, ZMQ_CONFLATE, OPT_INT, ACC_RW) \
    X(zap_domain, ZAP_DOMAIN, ZMQ_ZAP_DOMAIN, OPT_STR, ACC_RW) \
    X(router_handover, ROUTER_HANDOVER, ZMQ_ROUTER_HANDOVER, OPT_INT, ACC_W) \
    X(tos, TOS, ZMQ_TOS, OPT_INT, ACC_RW) \
    X(connect_routing_id, CONNECT_ROUTING_ID, ZMQ_CONNECT_ROUTING_ID, OPT_BYTES, ACC_W) \
    X(handshake_ivl, HANDSHAKE_IVL, ZMQ_HANDSHAKE_IVL, OPT_INT, ACC_RW) \
    X(socks_proxy, SOCKS_PROXY, ZMQ_SOCKS_PROXY, OPT_STR, ACC_RW) \
    X(xpub_nodrop, XPUB_NODROP, ZMQ_XPUB_NODROP, OPT_INT, ACC_W) \
    X(xpub_manual, XPUB_MANUAL, ZMQ_XPUB_MANUAL, OPT_INT, ACC_W) \
    X(xpub_welcome_msg, XPUB_WELCOME_MSG, ZMQ_XPUB_WELCOME_MSG, OPT_BYTES, ACC_W) \
    X(stream_notify, STREAM_NOTIFY, ZMQ_STREAM_NOTIFY, OPT_INT, ACC_W) \
    X(invert_matching, INVERT_MATCHING, ZMQ_INVERT_MATCHING, OPT_INT, ACC_RW) \
    X(heartbeat_ivl, HEARTBEAT_IVL, ZMQ_HEARTBEAT_IVL, OPT_INT, ACC_RW) \
    X(heartbeat_ttl, HEARTBEAT_TTL, ZMQ_HEARTBEAT_TTL, OPT_INT, ACC_RW) \
    X(heartbeat_timeout, HEARTBEAT_TIMEOUT, ZMQ_HEARTBEAT_TIMEOUT, OPT_INT, ACC_RW) \
    X(xpub_verboser, XPUB_VERBOSER, ZMQ_XPUB_VERBOSER, OPT_INT, ACC_W) \
    X(connect_timeout, CONNECT_TIMEOUT, ZMQ_CONNECT_TIMEOUT, OPT_INT, ACC_RW) \
    X(tcp_maxrt, TCP_MAXRT, ZMQ_TCP_MAXRT, OPT_INT, ACC_RW) \
    X(thread_safe, THREAD_SAFE, ZMQ_THREAD_SAFE, OPT_INT, ACC_R) \
    X(multicast_maxtpdu, MULTICAST_MAXTPDU, ZMQ_MULTICAST_MAXTPDU, OPT_INT, ACC_RW) \
    X(use_fd, USE_FD, ZMQ_USE_FD, OPT_INT, ACC_RW) \
    X(bindtodevice, BINDTODEVICE, ZMQ_BINDTODEVICE, OPT_STR, ACC_RW)

enum {
#define X(attr, CONST, opt, type, acc) OPTIDX_##attr,
    SOCKOPTS(X)
#undef X
    N_SOCKOPTS
};

static const sockopt_def sockopts[N_SOCKOPTS] = {
#define X(attr, CONST, opt, type, acc) {#attr, #CONST, opt, type, acc},
    SOCKOPTS(X)
#undef X
};

static const sockopt_def *
find_option(int option)
{
    for (int i = 0; i < N_SOCKOPTS; i++)
        if (sockopts[i].option == option)
            return &sockopts[i];
    return NULL;
}

/* ------------------------------------------------------------ objects */

typedef struct {
    PyObject_HEAD
} ContextObject;

typedef struct {
    PyObject_HEAD
    pseud_state *st;            /* lives as long as our type (ht_module) */
    void *handle;               /* libzmq socket; NULL once closed */
    int owned;                  /* close() calls zmq_close */
    int closed;
    int fd;                     /* its ZMQ_FD */
    int watching;               /* io_watcher started */
    int wake_scheduled;         /* sock_on_ready queued on the hub */
    long missed_wakeups;        /* safety-timer wake-ups that found it ready */
    PyObject *io_watcher;       /* on fd; created on the first wait */
    PyObject *recv_waiters;     /* list of Waiters wanting POLLIN */
    PyObject *send_waiters;     /* list of Waiters wanting POLLOUT */
    PyObject *lock_waiters;     /* list of Waiters wanting the send side */
    PyObject *send_owner;       /* greenlet mid-way through a message, or NULL */
    int shadow[N_SOCKOPTS];     /* write-only int options as set by us */
    unsigned char shadow_set[N_SOCKOPTS];
    PyObject *weakreflist;
} SocketObject;

typedef struct {
    PyObject_HEAD
    zmq_msg_t msg;
    PyObject *bytes;            /* cached copy, or NULL */
} FrameObject;

#define SOCK(o) ((SocketObject *)(o))

/* ------------------------------------------------------------- errors */

static PyObject *
raise_errno(pseud_state *st, int err)
{
    PyObject *cls = err == EAGAIN ? st->Again : st->ZMQError;
    PyObject *exc = PyObject_CallFunction(cls, "is", err, zmq_strerror(err));
    if (exc != NULL) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
raise_zmq(pseud_state *st)
{
    return raise_errno(st, zmq_errno());
}

static int
raise_closed(SocketObject *self)
{
    raise_errno(self->st, ENOTSOCK);
    return -1;
}

/* --------------------------------------------------- waiting machinery */

static PyMethodDef on_ready_def;

static PyObject *
on_ready_callable(SocketObject *self)
{
    return PyCFunction_NewEx(&on_ready_def, (PyObject *)self, NULL);
}

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

/* Pop the head of a non-empty list (new reference), or NULL if empty. */
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

static int
has_io_waiters(SocketObject *self)
{
    return PyList_GET_SIZE(self->recv_waiters) > 0 || PyList_GET_SIZE(self->send_waiters) > 0;
}

static int
start_watching(SocketObject *self)
{
    if (self->watching)
        return 0;
    if (self->io_watcher == NULL) {
        self->io_watcher = green_io_new(self->st, self->fd);
        if (self->io_watcher == NULL)
            return -1;
    }
    PyObject *cb = on_ready_callable(self);
    if (cb == NULL)
        return -1;
    int rc = green_watcher_start(self->io_watcher, cb);
    Py_DECREF(cb);
    if (rc < 0)
        return -1;
    self->watching = 1;
    return 0;
}

static void
stop_watching(SocketObject *self)
{
    if (!self->watching)
        return;
    self->watching = 0;
    green_watcher_stop(self->io_watcher);
}

/* After any send/recv, and whenever a greenlet leaves a queue without
 * consuming what it was woken for: if a queued waiter's event is ready,
 * have the hub run sock_on_ready (the edge that said so may be consumed).
 * Never raises. */
static void
after_io(SocketObject *self)
{
    if (self->closed || self->wake_scheduled || !has_io_waiters(self))
        return;
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(self->handle, ZMQ_EVENTS, &events, &len) != 0)
        events = ZMQ_POLLIN | ZMQ_POLLOUT;   /* let the waiters find out */
    if (((events & ZMQ_POLLIN) && PyList_GET_SIZE(self->recv_waiters) > 0)
        || ((events & ZMQ_POLLOUT) && PyList_GET_SIZE(self->send_waiters) > 0)) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyObject *cb = on_ready_callable(self);
        if (cb != NULL && green_run_callback(self->st, cb, Py_None) == 0)
            self->wake_scheduled = 1;
        else
            pseud_log(self->st, "error", "pseud: could not wake a socket's waiters");
        Py_XDECREF(cb);
        PyErr_Clear();
        PyErr_Restore(et, ev, tb);
    }
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
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (green_wake_later(self->st, w, Py_None) < 0) {
        pseud_log(self->st, "error", "pseud: could not wake a socket's sender");
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
    Py_DECREF(w);
}

/* A woken greenlet leaves without using its turn: hand it on. */
static void
pass_baton(SocketObject *self)
{
    after_io(self);
    wake_lock_waiter(self);
}

/* Hub callback: the io watcher fired, or after_io queued us. Wakes the
 * first recv waiter if POLLIN and the first send waiter if POLLOUT. */
GREEN_SWITCHES static PyObject *
sock_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    SocketObject *self = SOCK(op);
    Py_INCREF(self);
    self->wake_scheduled = 0;
    if (self->closed) {
        stop_watching(self);
        goto out;
    }
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(self->handle, ZMQ_EVENTS, &events, &len) != 0)
        events = ZMQ_POLLIN | ZMQ_POLLOUT;
    PyObject *r = NULL, *s = NULL;
    if (events & ZMQ_POLLIN)
        r = list_pop_first(self->recv_waiters);
    if (events & ZMQ_POLLOUT)
        s = list_pop_first(self->send_waiters);
    if (r != NULL) {
        if (green_waiter_switch(r, Py_None) < 0) {
            pseud_log(self->st, "error", "pseud: could not wake a socket's receiver");
            PyErr_Clear();
        }
        Py_DECREF(r);
    }
    if (s != NULL) {
        if (green_waiter_switch(s, Py_None) < 0) {
            pseud_log(self->st, "error", "pseud: could not wake a socket's sender");
            PyErr_Clear();
        }
        Py_DECREF(s);
    }
    if (!self->closed && !has_io_waiters(self))
        stop_watching(self);
out:
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static PyMethodDef on_ready_def = {
    "_on_ready", (PyCFunction)(void (*)(void))sock_on_ready, METH_FASTCALL, NULL};

enum { PARK_RETRY = 0, PARK_TIMEOUT = 1 };

/* An io waiter re-checks the socket at least this often (seconds) even if
 * no wake-up comes: a safety net against a missed ZMQ_FD edge (pyzmq's
 * gevent integration has one too). Finding the socket ready then is
 * logged as a warning and counted (_debug_state()['missed_wakeups']). */
#define SAFETY_INTERVAL 1.0

/* Park the current greenlet on `queue` until woken or `deadline` (a
 * green_now() time; < 0: none). `io`: the queue is served by the fd
 * watcher (recv_waiters or send_waiters). Returns PARK_RETRY (woken: try
 * again), PARK_TIMEOUT, or -1 with an exception (closed: ZMQError(ENOTSOCK);
 * or thrown into). */
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
    double wait = remaining;
    int safety = 0;
    if (io && (wait < 0 || wait > SAFETY_INTERVAL)) {
        wait = SAFETY_INTERVAL;
        safety = 1;
    }
    PyObject *waiter = green_waiter(self->st);
    if (waiter == NULL)
        return -1;
    PyObject *sw = NULL, *timer = NULL, *res = NULL;
    if (PyList_Append(queue, waiter) < 0)
        goto done;
    if (io) {
        if (start_watching(self) < 0)
            goto unlink;
        /* the failed attempt that brought us here processed libzmq's
         * commands, consuming the edge: whatever became ready meanwhile
         * (for us or for the other direction) must be looked at now */
        after_io(self);
    }
    if (wait >= 0) {
        sw = PyObject_GetAttrString(waiter, "switch");
        if (sw == NULL)
            goto unlink;
        /* the timer switches with the waiter itself: a private sentinel */
        timer = green_timer(self->st, wait, sw, waiter);
        if (timer == NULL)
            goto unlink;
    }
    res = green_waiter_get(waiter);
unlink:
    list_remove(queue, waiter);
    green_watcher_close(timer);   /* keeps a pending exception */
done:
    Py_XDECREF(timer);
    Py_XDECREF(sw);
    int woken = res == Py_None;
    int timed_out = res == waiter;
    Py_XDECREF(res);
    Py_DECREF(waiter);
    if (self->closed) {
        if (res != NULL)
            return raise_closed(self);
        return -1;
    }
    if (timed_out && safety) {
        int events = 0;
        size_t len = sizeof(events);
        int want = queue == self->recv_waiters ? ZMQ_POLLIN : ZMQ_POLLOUT;
        if (zmq_getsockopt(self->handle, ZMQ_EVENTS, &events, &len) == 0 && (events & want)) {
            self->missed_wakeups++;
            pseud_log(self->st, "warning",
                      "pseud: a socket's waiter was woken by its safety timer (fd %d)",
                      self->fd);
        }
        timed_out = 0;   /* not the deadline: retry */
    }
    if (!woken) {
        /* not woken by sock_on_ready: it will not stop the watcher for us */
        if (!has_io_waiters(self))
            stop_watching(self);
        pass_baton(self);
    }
    if (res == NULL)
        return -1;
    return timed_out ? PARK_TIMEOUT : PARK_RETRY;
}

/* Deadline of an operation from ZMQ_RCVTIMEO/ZMQ_SNDTIMEO: -1 for none. */
static int
op_deadline(SocketObject *self, int option, double *deadline)
{
    int ms = -1;
    size_t len = sizeof(ms);
    if (zmq_getsockopt(self->handle, option, &ms, &len) != 0) {
        raise_zmq(self->st);
        return -1;
    }
    *deadline = ms < 0 ? -1.0 : green_now() + ms / 1000.0;
    return 0;
}

static int
raise_again(SocketObject *self)
{
    raise_errno(self->st, EAGAIN);
    return -1;
}

/* ------------------------------------------------------------ sending */

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

/* True when the greenlet owning the send side has finished. */
static int
owner_is_dead(PyObject *owner)
{
    PyObject *dead = PyObject_GetAttrString(owner, "dead");
    int res = dead != NULL && PyObject_IsTrue(dead) == 1;
    Py_XDECREF(dead);
    PyErr_Clear();
    return res;
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
        if (owner_is_dead(self->send_owner)) {
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

/* Queue `n` frames as one message (plus SNDMORE on the last one when
 * `flags` has it). 0 / -1 with an exception. */
GREEN_SWITCHES static int
send_frames(SocketObject *self, Py_buffer *bufs, Py_ssize_t n, int flags)
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
            raise_errno(self->st, err);
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
    after_io(self);
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

/* Buffer of one frame; str is refused as pyzmq does. */
static int
frame_buffer(PyObject *obj, Py_buffer *view)
{
    if (PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError,
                        "str frames are not allowed: encode them (or use send_string)");
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "a frame must be bytes-like, not %.100s", Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- receiving */

/* Receive one frame into `msg` (initialised by the caller). 0 / -1. */
GREEN_SWITCHES static int
recv_frame(SocketObject *self, zmq_msg_t *msg, int flags, double *deadline, int *have_deadline)
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
            raise_errno(self->st, err);
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

static PyObject *
frame_from_msg(pseud_state *st, zmq_msg_t *msg)
{
    FrameObject *f = PyObject_New(FrameObject, st->Frame_Type);
    if (f == NULL)
        return NULL;
    zmq_msg_init(&f->msg);
    zmq_msg_move(&f->msg, msg);
    f->bytes = NULL;
    return (PyObject *)f;
}

/* The Python value of a received frame; `msg` is released either way. */
static PyObject *
msg_to_object(pseud_state *st, zmq_msg_t *msg, int copy)
{
    PyObject *res;
    if (copy)
        res = PyBytes_FromStringAndSize(zmq_msg_data(msg), (Py_ssize_t)zmq_msg_size(msg));
    else
        res = frame_from_msg(st, msg);
    zmq_msg_close(msg);
    return res;
}

/* ------------------------------------------------------ Socket object */

static SocketObject *
socket_alloc(pseud_state *st, void *handle, int owned)
{
    SocketObject *self = PyObject_GC_New(SocketObject, st->Socket_Type);
    if (self == NULL)
        return NULL;
    self->st = st;
    self->handle = handle;
    self->owned = owned;
    self->closed = 0;
    self->fd = -1;
    self->watching = 0;
    self->wake_scheduled = 0;
    self->missed_wakeups = 0;
    self->io_watcher = NULL;
    self->send_owner = NULL;
    self->weakreflist = NULL;
    memset(self->shadow, 0, sizeof(self->shadow));
    memset(self->shadow_set, 0, sizeof(self->shadow_set));
    self->recv_waiters = PyList_New(0);
    self->send_waiters = PyList_New(0);
    self->lock_waiters = PyList_New(0);
    PyObject_GC_Track(self);
    if (self->recv_waiters == NULL || self->send_waiters == NULL || self->lock_waiters == NULL) {
        self->handle = NULL;    /* the caller still owns it */
        Py_DECREF(self);
        return NULL;
    }
    size_t len = sizeof(self->fd);
    if (zmq_getsockopt(handle, ZMQ_FD, &self->fd, &len) != 0) {
        raise_zmq(st);
        self->handle = NULL;
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

PyObject *
socket_wrap(pseud_state *st, void *zsock, int owned)
{
    return (PyObject *)socket_alloc(st, zsock, owned);
}

void *
socket_handle(PyObject *sock)
{
    pseud_state *st = pseud_state_of(sock);
    if (st == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (!PyObject_TypeCheck(sock, st->Socket_Type))
        return NULL;
    return SOCK(sock)->closed ? NULL : SOCK(sock)->handle;
}

static void
wake_all(SocketObject *self, PyObject *queue)
{
    PyObject *w;
    while ((w = list_pop_first(queue)) != NULL) {
        if (green_wake_later(self->st, w, Py_None) < 0) {
            pseud_log(self->st, "error", "pseud: could not wake a greenlet of a closed socket");
            PyErr_Clear();
        }
        Py_DECREF(w);
    }
}

/* Close for Python; zmq_close only when `zclose` and we own the handle. */
static void
do_close(SocketObject *self, int zclose, int linger, int set_linger)
{
    if (self->closed)
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    self->closed = 1;
    /* the watcher must go before the fd it watches */
    if (self->io_watcher != NULL) {
        green_watcher_close(self->io_watcher);
        Py_CLEAR(self->io_watcher);
    }
    self->watching = 0;
    if (self->handle != NULL && zclose && self->owned) {
        if (set_linger)
            zmq_setsockopt(self->handle, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(self->handle);
    }
    self->handle = NULL;
    Py_CLEAR(self->send_owner);
    if (self->recv_waiters != NULL)
        wake_all(self, self->recv_waiters);
    if (self->send_waiters != NULL)
        wake_all(self, self->send_waiters);
    if (self->lock_waiters != NULL)
        wake_all(self, self->lock_waiters);
    PyErr_Restore(et, ev, tb);
}

void
socket_detach(PyObject *sock)
{
    pseud_state *st = pseud_state_of(sock);
    if (st == NULL) {
        PyErr_Clear();
        return;
    }
    if (PyObject_TypeCheck(sock, st->Socket_Type))
        do_close(SOCK(sock), 0, 0, 0);
}

static int
require_open(SocketObject *self)
{
    if (self->closed)
        return raise_closed(self);
    return 0;
}

static PyObject *
sock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"context", "socket_type", NULL};
    PyObject *context;
    int kind;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi:Socket", kwlist, &context, &kind))
        return NULL;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    if (context != Py_None && !PyObject_TypeCheck(context, st->Context_Type)) {
        PyErr_SetString(PyExc_TypeError, "Socket(context, socket_type): context must be a "
                                         "_pseud.Context (or None for the process-wide one)");
        return NULL;
    }
    if (type != st->Socket_Type) {
        PyErr_SetString(PyExc_TypeError, "_pseud.Socket cannot be subclassed");
        return NULL;
    }
    void *h = zmq_socket(st->zmq_ctx, kind);
    if (h == NULL)
        return raise_zmq(st);
    SocketObject *self = socket_alloc(st, h, 1);
    if (self == NULL)
        zmq_close(h);
    return (PyObject *)self;
}

static int
sock_traverse(PyObject *op, visitproc visit, void *arg)
{
    SocketObject *self = SOCK(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->io_watcher);
    Py_VISIT(self->recv_waiters);
    Py_VISIT(self->send_waiters);
    Py_VISIT(self->lock_waiters);
    Py_VISIT(self->send_owner);
    return 0;
}

static int
sock_clear(PyObject *op)
{
    SocketObject *self = SOCK(op);
    Py_CLEAR(self->io_watcher);
    Py_CLEAR(self->recv_waiters);
    Py_CLEAR(self->send_waiters);
    Py_CLEAR(self->lock_waiters);
    Py_CLEAR(self->send_owner);
    return 0;
}

static void
sock_dealloc(PyObject *op)
{
    SocketObject *self = SOCK(op);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs(op);
    if (!self->closed) {
        if (self->io_watcher != NULL) {
            green_watcher_close(self->io_watcher);
            Py_CLEAR(self->io_watcher);
        }
        if (self->handle != NULL && self->owned) {
            int zero = 0;
            zmq_setsockopt(self->handle, ZMQ_LINGER, &zero, sizeof(zero));
            zmq_close(self->handle);
        }
        self->handle = NULL;
        self->closed = 1;
    }
    else if (self->io_watcher != NULL) {
        green_watcher_close(self->io_watcher);
    }
    sock_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
sock_repr(PyObject *op)
{
    SocketObject *self = SOCK(op);
    if (self->closed)
        return PyUnicode_FromFormat("<_pseud.Socket closed at %p>", op);
    int kind = -1;
    size_t len = sizeof(kind);
    zmq_getsockopt(self->handle, ZMQ_TYPE, &kind, &len);
    return PyUnicode_FromFormat("<_pseud.Socket type=%d fd=%d at %p>", kind, self->fd, op);
}

/* endpoint as a C string (str or bytes); *keep holds the owner. */
static const char *
endpoint_arg(PyObject *ep, PyObject **keep)
{
    if (PyUnicode_Check(ep)) {
        *keep = PyUnicode_AsUTF8String(ep);
    }
    else if (PyBytes_Check(ep)) {
        *keep = Py_NewRef(ep);
    }
    else {
        PyErr_Format(PyExc_TypeError, "endpoint must be str or bytes, not %.100s",
                     Py_TYPE(ep)->tp_name);
        return NULL;
    }
    if (*keep == NULL)
        return NULL;
    const char *s = PyBytes_AS_STRING(*keep);
    if ((size_t)PyBytes_GET_SIZE(*keep) != strlen(s)) {
        Py_CLEAR(*keep);
        PyErr_SetString(PyExc_ValueError, "endpoint contains a NUL character");
        return NULL;
    }
    return s;
}

static PyObject *
endpoint_call(SocketObject *self, PyObject *ep, int (*fn)(void *, const char *))
{
    if (require_open(self) < 0)
        return NULL;
    PyObject *keep = NULL;
    const char *s = endpoint_arg(ep, &keep);
    if (s == NULL)
        return NULL;
    int rc = fn(self->handle, s);
    Py_DECREF(keep);
    if (rc != 0)
        return raise_zmq(self->st);
    /* an inproc connect attaches a pipe without signalling ZMQ_FD: a
     * sender parked for want of a peer must hear about it from us */
    after_io(self);
    Py_RETURN_NONE;
}

static PyObject *
sock_bind(PyObject *op, PyObject *ep)
{
    SocketObject *self = SOCK(op);
    PyObject *r = endpoint_call(self, ep, zmq_bind);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    char buf[1024];
    size_t len = sizeof(buf);
    if (zmq_getsockopt(self->handle, ZMQ_LAST_ENDPOINT, buf, &len) != 0)
        return raise_zmq(self->st);
    if (len > 0 && buf[len - 1] == '\0')
        len--;
    return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)len, "replace");
}

static PyObject *
sock_connect(PyObject *op, PyObject *ep)
{
    return endpoint_call(SOCK(op), ep, zmq_connect);
}

static PyObject *
sock_unbind(PyObject *op, PyObject *ep)
{
    return endpoint_call(SOCK(op), ep, zmq_unbind);
}

static PyObject *
sock_disconnect(PyObject *op, PyObject *ep)
{
    return endpoint_call(SOCK(op), ep, zmq_disconnect);
}

static PyObject *
sock_close(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"linger", NULL};
    PyObject *linger = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:close", kwlist, &linger))
        return NULL;
    int ms = 0;
    if (linger != Py_None) {
        ms = long_as_int(linger);
        if (ms == -1 && PyErr_Occurred())
            return NULL;
    }
    do_close(SOCK(op), 1, ms, linger != Py_None);
    Py_RETURN_NONE;
}

static PyObject *
sock_debug_state(PyObject *op, PyObject *unused)
{
    (void)unused;
    SocketObject *self = SOCK(op);
    return Py_BuildValue("{s:n,s:n,s:n,s:O,s:i,s:i,s:l}",
                         "recv_waiters", self->recv_waiters ? PyList_GET_SIZE(self->recv_waiters) : 0,
                         "send_waiters", self->send_waiters ? PyList_GET_SIZE(self->send_waiters) : 0,
                         "lock_waiters", self->lock_waiters ? PyList_GET_SIZE(self->lock_waiters) : 0,
                         "send_owned", self->send_owner != NULL ? Py_True : Py_False,
                         "watching", self->watching,
                         "wake_scheduled", self->wake_scheduled,
                         "missed_wakeups", self->missed_wakeups);
}

static PyObject *
sock_enter(PyObject *op, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(op);
}

static PyObject *
sock_exit(PyObject *op, PyObject *args)
{
    (void)args;
    do_close(SOCK(op), 1, 0, 0);
    Py_RETURN_NONE;
}

/* ---- send / recv methods */

static int
parse_flags(PyObject *obj, int *flags)
{
    if (obj == NULL)
        return 0;
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *flags = (int)v;
    return 0;
}

GREEN_SWITCHES static PyObject *
sock_send(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "flags", "copy", "track", NULL};
    PyObject *data, *flags_obj = NULL, *copy = NULL, *track = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:send", kwlist,
                                     &data, &flags_obj, &copy, &track))
        return NULL;
    int flags = 0;
    if (parse_flags(flags_obj, &flags) < 0)
        return NULL;
    Py_buffer view;
    if (frame_buffer(data, &view) < 0)
        return NULL;
    int rc = send_frames(SOCK(op), &view, 1, flags);
    PyBuffer_Release(&view);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

GREEN_SWITCHES static PyObject *
sock_send_multipart(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"msg_parts", "flags", "copy", "track", NULL};
    PyObject *parts, *flags_obj = NULL, *copy = NULL, *track = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:send_multipart", kwlist,
                                     &parts, &flags_obj, &copy, &track))
        return NULL;
    int flags = 0;
    if (parse_flags(flags_obj, &flags) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(parts, "send_multipart: msg_parts must be iterable");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "send_multipart: no frames to send");
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc((size_t)n, sizeof(Py_buffer));
    if (views == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t got = 0;
    int rc = 0;
    for (; got < n; got++) {
        if (frame_buffer(PySequence_Fast_GET_ITEM(seq, got), &views[got]) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        rc = send_frames(SOCK(op), views, n, flags);
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    Py_DECREF(seq);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

GREEN_SWITCHES static PyObject *
sock_send_string(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"u", "flags", "copy", "encoding", NULL};
    PyObject *u, *flags_obj = NULL, *copy = NULL;
    const char *encoding = "utf-8";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|OOs:send_string", kwlist,
                                     &u, &flags_obj, &copy, &encoding))
        return NULL;
    int flags = 0;
    if (parse_flags(flags_obj, &flags) < 0)
        return NULL;
    PyObject *b = PyUnicode_AsEncodedString(u, encoding, "strict");
    if (b == NULL)
        return NULL;
    Py_buffer view;
    int rc = PyObject_GetBuffer(b, &view, PyBUF_SIMPLE);
    if (rc == 0) {
        rc = send_frames(SOCK(op), &view, 1, flags);
        PyBuffer_Release(&view);
    }
    Py_DECREF(b);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int
parse_recv_args(PyObject *args, PyObject *kwds, const char *fmt, int *flags, int *copy)
{
    static char *kwlist[] = {"flags", "copy", "track", NULL};
    PyObject *flags_obj = NULL, *copy_obj = NULL, *track = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &flags_obj, &copy_obj, &track))
        return -1;
    if (parse_flags(flags_obj, flags) < 0)
        return -1;
    if (copy_obj != NULL) {
        int c = PyObject_IsTrue(copy_obj);
        if (c < 0)
            return -1;
        *copy = c;
    }
    return 0;
}

GREEN_SWITCHES static PyObject *
sock_recv(PyObject *op, PyObject *args, PyObject *kwds)
{
    SocketObject *self = SOCK(op);
    int flags = 0, copy = 1;
    if (parse_recv_args(args, kwds, "|OOO:recv", &flags, &copy) < 0)
        return NULL;
    double deadline = -1.0;
    int have_deadline = 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    Py_INCREF(self);
    int rc = recv_frame(self, &msg, flags, &deadline, &have_deadline);
    PyObject *res = NULL;
    if (rc == 0) {
        after_io(self);
        res = msg_to_object(self->st, &msg, copy);
    }
    else {
        zmq_msg_close(&msg);
    }
    Py_DECREF(self);
    return res;
}

GREEN_SWITCHES static PyObject *
sock_recv_string(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"flags", "encoding", NULL};
    PyObject *flags_obj = NULL;
    const char *encoding = "utf-8";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Os:recv_string", kwlist,
                                     &flags_obj, &encoding))
        return NULL;
    int flags = 0;
    if (parse_flags(flags_obj, &flags) < 0)
        return NULL;
    SocketObject *self = SOCK(op);
    double deadline = -1.0;
    int have_deadline = 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    Py_INCREF(self);
    int rc = recv_frame(self, &msg, flags, &deadline, &have_deadline);
    PyObject *res = NULL;
    if (rc == 0) {
        after_io(self);
        res = PyUnicode_Decode(zmq_msg_data(&msg), (Py_ssize_t)zmq_msg_size(&msg),
                               encoding, "strict");
    }
    zmq_msg_close(&msg);
    Py_DECREF(self);
    return res;
}

GREEN_SWITCHES static PyObject *
sock_recv_multipart(PyObject *op, PyObject *args, PyObject *kwds)
{
    SocketObject *self = SOCK(op);
    int flags = 0, copy = 1;
    if (parse_recv_args(args, kwds, "|OOO:recv_multipart", &flags, &copy) < 0)
        return NULL;
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
        if (recv_frame(self, &msg, flags, &deadline, &have_deadline) < 0) {
            zmq_msg_close(&msg);
            Py_CLEAR(list);
            break;
        }
        int more = zmq_msg_more(&msg);
        PyObject *item = msg_to_object(self->st, &msg, copy);
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
    after_io(self);
    Py_DECREF(self);
    return list;
}

GREEN_SWITCHES static PyObject *
sock_poll(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", "flags", NULL};
    SocketObject *self = SOCK(op);
    PyObject *timeout = Py_None;
    int flags = ZMQ_POLLIN;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Oi:poll", kwlist, &timeout, &flags))
        return NULL;
    double deadline = -1.0;
    if (timeout != Py_None) {
        double ms = PyFloat_AsDouble(timeout);
        if (ms == -1.0 && PyErr_Occurred())
            return NULL;
        if (ms >= 0)
            deadline = green_now() + ms / 1000.0;
    }
    Py_INCREF(self);
    PyObject *res = NULL;
    for (;;) {
        if (require_open(self) < 0)
            break;
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(self->handle, ZMQ_EVENTS, &events, &len) != 0) {
            raise_zmq(self->st);
            break;
        }
        if ((events & flags) || !(flags & (ZMQ_POLLIN | ZMQ_POLLOUT))) {
            after_io(self);
            res = PyLong_FromLong(events & flags);
            break;
        }
        PyObject *queue = (flags & ZMQ_POLLIN) ? self->recv_waiters : self->send_waiters;
        int pr = park(self, queue, 1, deadline);
        if (pr < 0)
            break;
        if (pr == PARK_TIMEOUT) {
            res = PyLong_FromLong(0);
            break;
        }
    }
    Py_DECREF(self);
    return res;
}

/* ---- options */

static PyObject *
get_option(SocketObject *self, int option, const sockopt_def *def)
{
    if (require_open(self) < 0)
        return NULL;
    int type = def != NULL ? def->type : OPT_INT;
    if (def != NULL && def->access == ACC_W && def->type == OPT_INT) {
        Py_ssize_t idx = def - sockopts;
        if (self->shadow_set[idx])
            return PyLong_FromLong(self->shadow[idx]);
    }
    switch (type) {
    case OPT_INT: {
        int v = 0;
        size_t len = sizeof(v);
        if (zmq_getsockopt(self->handle, option, &v, &len) != 0)
            return raise_zmq(self->st);
        if (option == ZMQ_EVENTS)
            after_io(self);     /* it processed libzmq's commands: the edge is gone */
        return PyLong_FromLong(v);
    }
    case OPT_INT64: {
        int64_t v = 0;
        size_t len = sizeof(v);
        if (zmq_getsockopt(self->handle, option, &v, &len) != 0)
            return raise_zmq(self->st);
        return PyLong_FromLongLong((long long)v);
    }
    case OPT_KEY: {
        char buf[41];
        size_t len = sizeof(buf);
        if (zmq_getsockopt(self->handle, option, buf, &len) != 0)
            return raise_zmq(self->st);
        if (len > 0 && buf[len - 1] == '\0')
            len--;
        return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    }
    default: {   /* OPT_BYTES, OPT_STR */
        char buf[4096];
        size_t len = sizeof(buf);
        if (zmq_getsockopt(self->handle, option, buf, &len) != 0)
            return raise_zmq(self->st);
        if (type == OPT_STR && len > 0 && buf[len - 1] == '\0')
            len--;
        return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    }
    }
}

static int
set_option(SocketObject *self, int option, const sockopt_def *def, PyObject *value)
{
    if (require_open(self) < 0)
        return -1;
    int type;
    if (def != NULL)
        type = def->type;
    else if (PyLong_Check(value))
        type = OPT_INT;
    else
        type = OPT_BYTES;
    int rc;
    if (type == OPT_INT || type == OPT_INT64) {
        if (!PyLong_Check(value)) {
            PyErr_Format(PyExc_TypeError, "option %d takes an int, not %.100s",
                         option, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (type == OPT_INT) {
            int v = long_as_int(value);
            if (v == -1 && PyErr_Occurred())
                return -1;
            rc = zmq_setsockopt(self->handle, option, &v, sizeof(v));
            if (rc == 0 && def != NULL && def->access == ACC_W) {
                Py_ssize_t idx = def - sockopts;
                self->shadow[idx] = v;
                self->shadow_set[idx] = 1;
            }
        }
        else {
            long long v = PyLong_AsLongLong(value);
            if (v == -1 && PyErr_Occurred())
                return -1;
            int64_t v64 = (int64_t)v;
            rc = zmq_setsockopt(self->handle, option, &v64, sizeof(v64));
        }
    }
    else {
        PyObject *b;
        if (PyUnicode_Check(value)) {
            b = PyUnicode_AsUTF8String(value);
        }
        else if (PyBytes_Check(value)) {
            b = Py_NewRef(value);
        }
        else if (PyObject_CheckBuffer(value)) {
            b = PyBytes_FromObject(value);
        }
        else {
            PyErr_Format(PyExc_TypeError, "option %d takes bytes or str, not %.100s",
                         option, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (b == NULL)
            return -1;
        rc = zmq_setsockopt(self->handle, option, PyBytes_AS_STRING(b),
                            (size_t)PyBytes_GET_SIZE(b));
        Py_DECREF(b);
    }
    if (rc != 0) {
        raise_zmq(self->st);
        return -1;
    }
    after_io(self);     /* e.g. a higher HWM may let a parked sender go */
    return 0;
}

static PyObject *
sock_setsockopt(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "setsockopt(option, value) takes 2 arguments");
        return NULL;
    }
    int option = long_as_int(args[0]);
    if (option == -1 && PyErr_Occurred())
        return NULL;
    if (set_option(SOCK(op), option, find_option(option), args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
sock_getsockopt(PyObject *op, PyObject *arg)
{
    int option = long_as_int(arg);
    if (option == -1 && PyErr_Occurred())
        return NULL;
    return get_option(SOCK(op), option, find_option(option));
}

static PyObject *
sock_subscribe_method(PyObject *op, PyObject *topic)
{
    if (set_option(SOCK(op), ZMQ_SUBSCRIBE, &sockopts[OPTIDX_subscribe], topic) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
sock_unsubscribe_method(PyObject *op, PyObject *topic)
{
    if (set_option(SOCK(op), ZMQ_UNSUBSCRIBE, &sockopts[OPTIDX_unsubscribe], topic) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef subscribe_def = {
    "subscribe", sock_subscribe_method, METH_O, "subscribe(topic): set ZMQ_SUBSCRIBE."};
static PyMethodDef unsubscribe_def = {
    "unsubscribe", sock_unsubscribe_method, METH_O, "unsubscribe(topic): set ZMQ_UNSUBSCRIBE."};

/* attribute access for the option table */
static PyObject *
opt_get(PyObject *op, void *closure)
{
    const sockopt_def *def = closure;
    if (def->option == ZMQ_SUBSCRIBE)
        return PyCFunction_NewEx(&subscribe_def, op, NULL);
    if (def->option == ZMQ_UNSUBSCRIBE)
        return PyCFunction_NewEx(&unsubscribe_def, op, NULL);
    return get_option(SOCK(op), def->option, def);
}

static int
opt_set(PyObject *op, PyObject *value, void *closure)
{
    const sockopt_def *def = closure;
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete socket option '%s'", def->attr);
        return -1;
    }
    if (!(def->access & ACC_W)) {
        PyErr_Format(PyExc_AttributeError, "socket option '%s' is read-only", def->attr);
        return -1;
    }
    return set_option(SOCK(op), def->option, def, value);
}

static PyObject *
sock_get_closed(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(SOCK(op)->closed);
}

static PyObject *
sock_get_underlying(PyObject *op, void *closure)
{
    (void)closure;
    SocketObject *self = SOCK(op);
    if (require_open(self) < 0)
        return NULL;
    return PyLong_FromVoidPtr(self->handle);
}

static PyObject *
sock_get_context(PyObject *op, void *closure)
{
    (void)closure;
    return Py_NewRef(SOCK(op)->st->context);
}

static PyGetSetDef sock_getset[] = {
    {"closed", sock_get_closed, NULL, "True once close() was called.", NULL},
    {"underlying", sock_get_underlying, NULL, "The libzmq socket (void *) as an int.", NULL},
    {"context", sock_get_context, NULL, "The process-wide _pseud.Context.", NULL},
#define X(attr, CONST, opt, type, acc) \
    {#attr, opt_get, opt_set, "socket option " #CONST, (void *)&sockopts[OPTIDX_##attr]},
    SOCKOPTS(X)
#undef X
    {NULL},
};

static PyMethodDef sock_methods[] = {
    {"bind", sock_bind, METH_O,
     "bind(endpoint) -> the endpoint bound (ZMQ_LAST_ENDPOINT, str)."},
    {"connect", sock_connect, METH_O, "connect(endpoint)"},
    {"unbind", sock_unbind, METH_O, "unbind(endpoint)"},
    {"disconnect", sock_disconnect, METH_O, "disconnect(endpoint)"},
    {"close", (PyCFunction)(void (*)(void))sock_close, METH_VARARGS | METH_KEYWORDS,
     "close(linger=None): close the socket (idempotent); blocked greenlets get "
     "ZMQError(ENOTSOCK)."},
    {"send", (PyCFunction)(void (*)(void))sock_send, METH_VARARGS | METH_KEYWORDS,
     "send(data, flags=0, copy=True, track=False): queue one frame (bytes-like)."},
    {"send_multipart", (PyCFunction)(void (*)(void))sock_send_multipart,
     METH_VARARGS | METH_KEYWORDS,
     "send_multipart(msg_parts, flags=0, copy=True, track=False): queue a message, "
     "never interleaved with other greenlets' frames."},
    {"send_string", (PyCFunction)(void (*)(void))sock_send_string, METH_VARARGS | METH_KEYWORDS,
     "send_string(u, flags=0, copy=True, encoding='utf-8')"},
    {"recv", (PyCFunction)(void (*)(void))sock_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(flags=0, copy=True, track=False) -> bytes, or a Frame when copy is false."},
    {"recv_multipart", (PyCFunction)(void (*)(void))sock_recv_multipart,
     METH_VARARGS | METH_KEYWORDS,
     "recv_multipart(flags=0, copy=True, track=False) -> list of bytes (or Frames)."},
    {"recv_string", (PyCFunction)(void (*)(void))sock_recv_string, METH_VARARGS | METH_KEYWORDS,
     "recv_string(flags=0, encoding='utf-8') -> str"},
    {"poll", (PyCFunction)(void (*)(void))sock_poll, METH_VARARGS | METH_KEYWORDS,
     "poll(timeout=None, flags=POLLIN) -> the ready events among flags (0 on timeout); "
     "timeout in milliseconds. With POLLIN|POLLOUT it waits for input."},
    {"setsockopt", (PyCFunction)(void (*)(void))sock_setsockopt, METH_FASTCALL,
     "setsockopt(option, value)"},
    {"set", (PyCFunction)(void (*)(void))sock_setsockopt, METH_FASTCALL,
     "set(option, value): alias of setsockopt."},
    {"getsockopt", sock_getsockopt, METH_O, "getsockopt(option) -> int or bytes"},
    {"get", sock_getsockopt, METH_O, "get(option): alias of getsockopt."},
    {"_debug_state", sock_debug_state, METH_NOARGS,
     "_debug_state() -> dict: queue lengths and flags (for tests)."},
    {"__enter__", sock_enter, METH_NOARGS, NULL},
    {"__exit__", sock_exit, METH_VARARGS, NULL},
    {NULL},
};

static PyMemberDef sock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SocketObject, weakreflist), READONLY, NULL},
    {NULL},
};

static PyType_Slot sock_slots[] = {
    {Py_tp_doc, "Socket(context, socket_type): a libzmq socket, cooperative under gevent "
                "and shareable between greenlets; options as attributes (sock.linger = 0)."},
    {Py_tp_new, sock_new},
    {Py_tp_dealloc, sock_dealloc},
    {Py_tp_traverse, sock_traverse},
    {Py_tp_clear, sock_clear},
    {Py_tp_repr, sock_repr},
    {Py_tp_methods, sock_methods},
    {Py_tp_getset, sock_getset},
    {Py_tp_members, sock_members},
    {0, NULL},
};

static PyType_Spec sock_spec = {
    .name = "pseud._pseud.Socket",
    .basicsize = sizeof(SocketObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = sock_slots,
};

/* ------------------------------------------------------- Frame object */

#define FRAME(o) ((FrameObject *)(o))

static void
frame_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    zmq_msg_close(&FRAME(op)->msg);
    Py_CLEAR(FRAME(op)->bytes);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static PyObject *
frame_get_bytes(PyObject *op, void *closure)
{
    (void)closure;
    FrameObject *f = FRAME(op);
    if (f->bytes == NULL) {
        f->bytes = PyBytes_FromStringAndSize(zmq_msg_data(&f->msg),
                                             (Py_ssize_t)zmq_msg_size(&f->msg));
        if (f->bytes == NULL)
            return NULL;
    }
    return Py_NewRef(f->bytes);
}

static PyObject *
frame_bytes_method(PyObject *op, PyObject *unused)
{
    (void)unused;
    return frame_get_bytes(op, NULL);
}

static PyObject *
frame_get_buffer(PyObject *op, void *closure)
{
    (void)closure;
    return PyMemoryView_FromObject(op);
}

static PyObject *
frame_get_more(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(zmq_msg_more(&FRAME(op)->msg));
}

static int
frame_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    FrameObject *f = FRAME(op);
    return PyBuffer_FillInfo(view, op, zmq_msg_data(&f->msg),
                             (Py_ssize_t)zmq_msg_size(&f->msg), 1, flags);
}

static Py_ssize_t
frame_len(PyObject *op)
{
    return (Py_ssize_t)zmq_msg_size(&FRAME(op)->msg);
}

static PyObject *
frame_get(PyObject *op, PyObject *prop)
{
    FrameObject *f = FRAME(op);
    pseud_state *st = pseud_state_of(op);
    if (st == NULL)
        return NULL;
    if (PyLong_Check(prop)) {
        int p = long_as_int(prop);
        if (p == -1 && PyErr_Occurred())
            return NULL;
        int v = zmq_msg_get(&f->msg, p);
        if (v == -1)
            return raise_zmq(st);
        return PyLong_FromLong(v);
    }
    PyObject *keep;
    if (PyUnicode_Check(prop))
        keep = PyUnicode_AsUTF8String(prop);
    else if (PyBytes_Check(prop))
        keep = Py_NewRef(prop);
    else {
        PyErr_Format(PyExc_TypeError, "Frame.get: property must be str, bytes or int, not %.100s",
                     Py_TYPE(prop)->tp_name);
        return NULL;
    }
    if (keep == NULL)
        return NULL;
    const char *v = zmq_msg_gets(&f->msg, PyBytes_AS_STRING(keep));
    Py_DECREF(keep);
    if (v == NULL)
        return raise_zmq(st);
    return PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "surrogateescape");
}

static PyObject *
frame_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<_pseud.Frame %zd bytes>", frame_len(op));
}

static PyObject *
frame_richcompare(PyObject *op, PyObject *other, int cmp)
{
    if (cmp != Py_EQ && cmp != Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    Py_buffer view;
    if (PyUnicode_Check(other) || PyObject_GetBuffer(other, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    FrameObject *f = FRAME(op);
    size_t n = zmq_msg_size(&f->msg);
    int eq = (size_t)view.len == n && (n == 0 || memcmp(view.buf, zmq_msg_data(&f->msg), n) == 0);
    PyBuffer_Release(&view);
    return PyBool_FromLong(cmp == Py_EQ ? eq : !eq);
}

static PyGetSetDef frame_getset[] = {
    {"bytes", frame_get_bytes, NULL, "The frame's data as bytes (a cached copy).", NULL},
    {"buffer", frame_get_buffer, NULL, "A read-only memoryview of the frame's data.", NULL},
    {"more", frame_get_more, NULL, "True if more frames of the message follow.", NULL},
    {NULL},
};

static PyMethodDef frame_methods[] = {
    {"get", frame_get, METH_O,
     "get(property) -> str metadata via zmq_msg_gets (e.g. 'User-Id', "
     "'Socket-Type'), or an int via zmq_msg_get for an int property."},
    {"__bytes__", frame_bytes_method, METH_NOARGS, NULL},
    {NULL},
};

static PyType_Slot frame_slots[] = {
    {Py_tp_doc, "A received message frame (recv(copy=False))."},
    {Py_tp_dealloc, frame_dealloc},
    {Py_tp_repr, frame_repr},
    {Py_tp_richcompare, frame_richcompare},
    {Py_tp_getset, frame_getset},
    {Py_tp_methods, frame_methods},
    {Py_bf_getbuffer, frame_getbuffer},
    {Py_sq_length, frame_len},
    {Py_mp_length, frame_len},
    {0, NULL},
};

static PyType_Spec frame_spec = {
    .name = "pseud._pseud.Frame",
    .basicsize = sizeof(FrameObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = frame_slots,
};

/* ----------------------------------------------------- Context object */

static PyObject *
ctx_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    if (st->context != NULL)
        return Py_NewRef(st->context);
    return type->tp_alloc(type, 0);
}

static PyObject *
ctx_instance(PyObject *cls, PyObject *args)
{
    (void)args;
    pseud_state *st = pseud_state_from_type((PyTypeObject *)cls);
    if (st == NULL)
        return NULL;
    return Py_NewRef(st->context);
}

static PyObject *
ctx_socket(PyObject *op, PyObject *arg)
{
    pseud_state *st = pseud_state_of(op);
    if (st == NULL)
        return NULL;
    int kind = long_as_int(arg);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    void *h = zmq_socket(st->zmq_ctx, kind);
    if (h == NULL)
        return raise_zmq(st);
    SocketObject *s = socket_alloc(st, h, 1);
    if (s == NULL)
        zmq_close(h);
    return (PyObject *)s;
}

static PyObject *
ctx_get_underlying(PyObject *op, void *closure)
{
    (void)closure;
    pseud_state *st = pseud_state_of(op);
    if (st == NULL)
        return NULL;
    return PyLong_FromVoidPtr(st->zmq_ctx);
}

static PyObject *
ctx_get_closed(PyObject *op, void *closure)
{
    (void)op;
    (void)closure;
    Py_RETURN_FALSE;
}

static int
ctx_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));      /* module state -> context -> type -> module */
    return 0;
}

static void
ctx_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef ctx_methods[] = {
    {"instance", ctx_instance, METH_NOARGS | METH_CLASS,
     "instance() -> the process-wide context (the one every pseud RPC uses)."},
    {"socket", ctx_socket, METH_O, "socket(kind) -> a new _pseud.Socket (kind: ROUTER, ...)."},
    {NULL},
};

static PyGetSetDef ctx_getset[] = {
    {"underlying", ctx_get_underlying, NULL, "The libzmq context (void *) as an int.", NULL},
    {"closed", ctx_get_closed, NULL, "Always False: the module owns the context.", NULL},
    {NULL},
};

static PyType_Slot ctx_slots[] = {
    {Py_tp_doc, "The process-wide libzmq context of pseud (never terminated by Python "
                "code: the module owns it). Context() and Context.instance() return it."},
    {Py_tp_new, ctx_new},
    {Py_tp_dealloc, ctx_dealloc},
    {Py_tp_traverse, ctx_traverse},
    {Py_tp_methods, ctx_methods},
    {Py_tp_getset, ctx_getset},
    {0, NULL},
};

static PyType_Spec ctx_spec = {
    .name = "pseud._pseud.Context",
    .basicsize = sizeof(ContextObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = ctx_slots,
};

/* ---------------------------------------------------- module functions */

static PyObject *
mod_curve_keypair(PyObject *module, PyObject *unused)
{
    (void)unused;
    pseud_state *st = PyModule_GetState(module);
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0)
        return raise_zmq(st);
    return Py_BuildValue("(y#y#)", pub, (Py_ssize_t)40, sec, (Py_ssize_t)40);
}

static PyObject *
mod_z85_encode(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % 4 != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "z85_encode: length must be a multiple of 4");
        return NULL;
    }
    Py_ssize_t out_len = view.len / 4 * 5;
    char *out = PyMem_Malloc((size_t)out_len + 1);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    PyObject *res = NULL;
    if (zmq_z85_encode(out, view.buf, (size_t)view.len) == NULL)
        PyErr_SetString(PyExc_ValueError, "z85_encode failed");
    else
        res = PyBytes_FromStringAndSize(out, out_len);
    PyMem_Free(out);
    PyBuffer_Release(&view);
    return res;
}

static PyObject *
mod_z85_decode(PyObject *module, PyObject *arg)
{
    (void)module;
    PyObject *b;
    if (PyUnicode_Check(arg)) {
        b = PyUnicode_AsASCIIString(arg);
        if (b == NULL) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "z85_decode: not a Z85 string");
            return NULL;
        }
    }
    else if (PyBytes_Check(arg)) {
        b = Py_NewRef(arg);
    }
    else {
        PyErr_Format(PyExc_TypeError, "z85_decode: expected bytes or str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    const char *s = PyBytes_AS_STRING(b);
    if (n == 0) {   /* libzmq refuses it; z85_encode(b'') is b'' */
        Py_DECREF(b);
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    if (n % 5 != 0 || (size_t)n != strlen(s)) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "z85_decode: length must be a multiple of 5");
        return NULL;
    }
    Py_ssize_t out_len = n / 5 * 4;
    uint8_t *out = PyMem_Malloc((size_t)out_len + 1);
    if (out == NULL) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    PyObject *res = NULL;
    if (zmq_z85_decode(out, s) == NULL)
        PyErr_SetString(PyExc_ValueError, "z85_decode: invalid Z85 data");
    else
        res = PyBytes_FromStringAndSize((const char *)out, out_len);
    PyMem_Free(out);
    Py_DECREF(b);
    return res;
}

static PyObject *
mod_has(PyObject *module, PyObject *arg)
{
    (void)module;
    const char *cap = PyUnicode_AsUTF8(arg);
    if (cap == NULL)
        return NULL;
    return PyBool_FromLong(zmq_has(cap));
}

static PyObject *
mod_strerror(PyObject *module, PyObject *arg)
{
    (void)module;
    int err = long_as_int(arg);
    if (err == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(zmq_strerror(err));
}

static PyMethodDef socket_functions[] = {
    {"curve_keypair", mod_curve_keypair, METH_NOARGS,
     "curve_keypair() -> (public, secret): a new CURVE key pair, Z85 bytes."},
    {"z85_encode", mod_z85_encode, METH_O,
     "z85_encode(data) -> Z85 bytes; len(data) must be a multiple of 4."},
    {"z85_decode", mod_z85_decode, METH_O,
     "z85_decode(bytes|str) -> bytes; the length must be a multiple of 5."},
    {"has", mod_has, METH_O, "has(capability) -> bool (zmq_has: 'curve', 'ipc', ...)."},
    {"strerror", mod_strerror, METH_O, "strerror(errno) -> libzmq's message for it."},
    {NULL},
};

/* -------------------------------------------------------- exceptions */

static const char exceptions_src[] =
    "class ZMQError(Exception):\n"
    "    \"\"\"A libzmq call failed: `errno` is its error number, `strerror`\n"
    "    libzmq's message for it.\"\"\"\n"
    "    errno = None\n"
    "    strerror = None\n"
    "\n"
    "    def __init__(self, errno=None, msg=None):\n"
    "        if errno is not None and not isinstance(errno, int):\n"
    "            errno, msg = None, str(errno) if msg is None else msg\n"
    "        if msg is None:\n"
    "            msg = _strerror(errno) if errno is not None else 'unknown error'\n"
    "        self.errno = errno\n"
    "        self.strerror = msg\n"
    "        super().__init__(errno, msg)\n"
    "\n"
    "    def __str__(self):\n"
    "        return str(self.strerror)\n"
    "\n"
    "    def __repr__(self):\n"
    "        return '%s(%r, %r)' % (type(self).__name__, self.errno, self.strerror)\n"
    "\n"
    "\n"
    "class Again(ZMQError):\n"
    "    \"\"\"EAGAIN: nothing to receive / no room to send without blocking\n"
    "    (DONTWAIT), or ZMQ_RCVTIMEO / ZMQ_SNDTIMEO expired.\"\"\"\n"
    "\n"
    "    def __init__(self, errno=_EAGAIN, msg=None):\n"
    "        super().__init__(errno, msg)\n";

static int
make_exceptions(PyObject *module, pseud_state *st)
{
    PyObject *ns = PyDict_New();
    if (ns == NULL)
        return -1;
    PyObject *strerror = PyObject_GetAttrString(module, "strerror");
    PyObject *eagain = PyLong_FromLong(EAGAIN);
    PyObject *name = PyUnicode_FromString("pseud._pseud");
    int rc = -1;
    if (strerror == NULL || eagain == NULL || name == NULL
        || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0
        || PyDict_SetItemString(ns, "__name__", name) < 0
        || PyDict_SetItemString(ns, "_strerror", strerror) < 0
        || PyDict_SetItemString(ns, "_EAGAIN", eagain) < 0)
        goto done;
    PyObject *res = PyRun_String(exceptions_src, Py_file_input, ns, ns);
    if (res == NULL)
        goto done;
    Py_DECREF(res);
    st->ZMQError = Py_XNewRef(PyDict_GetItemString(ns, "ZMQError"));
    st->Again = Py_XNewRef(PyDict_GetItemString(ns, "Again"));
    if (st->ZMQError == NULL || st->Again == NULL) {
        PyErr_SetString(PyExc_SystemError, "pseud: could not create ZMQError");
        goto done;
    }
    if (PyModule_AddObjectRef(module, "ZMQError", st->ZMQError) < 0
        || PyModule_AddObjectRef(module, "Again", st->Again) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(strerror);
    Py_XDECREF(eagain);
    Py_XDECREF(name);
    Py_DECREF(ns);
    return rc;
}

/* --------------------------------------------------------------- init */

int
socket_init_module(PyObject *module, pseud_state *st)
{
    if (PyModule_AddFunctions(module, socket_functions) < 0)
        return -1;
    if (make_exceptions(module, st) < 0)
        return -1;

    st->Context_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ctx_spec, NULL);
    if (st->Context_Type == NULL || PyModule_AddType(module, st->Context_Type) < 0)
        return -1;
    st->Socket_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &sock_spec, NULL);
    if (st->Socket_Type == NULL || PyModule_AddType(module, st->Socket_Type) < 0)
        return -1;
    st->Frame_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &frame_spec, NULL);
    if (st->Frame_Type == NULL || PyModule_AddType(module, st->Frame_Type) < 0)
        return -1;
    st->context = PyType_GenericAlloc(st->Context_Type, 0);
    if (st->context == NULL)
        return -1;

    static const struct { const char *name; int value; } consts[] = {
        /* socket kinds */
        {"PAIR", ZMQ_PAIR}, {"PUB", ZMQ_PUB}, {"SUB", ZMQ_SUB}, {"REQ", ZMQ_REQ},
        {"REP", ZMQ_REP}, {"DEALER", ZMQ_DEALER}, {"ROUTER", ZMQ_ROUTER},
        {"PULL", ZMQ_PULL}, {"PUSH", ZMQ_PUSH}, {"XPUB", ZMQ_XPUB}, {"XSUB", ZMQ_XSUB},
        {"STREAM", ZMQ_STREAM},
        /* flags and events */
        {"DONTWAIT", ZMQ_DONTWAIT}, {"NOBLOCK", ZMQ_DONTWAIT}, {"SNDMORE", ZMQ_SNDMORE},
        {"POLLIN", ZMQ_POLLIN}, {"POLLOUT", ZMQ_POLLOUT}, {"POLLERR", ZMQ_POLLERR},
        {"MORE", ZMQ_MORE},
        /* security mechanisms (values of ZMQ_MECHANISM) */
        {"NULL", ZMQ_NULL}, {"PLAIN", ZMQ_PLAIN}, {"CURVE", ZMQ_CURVE},
        /* libzmq's own errno values */
        {"ETERM", ETERM}, {"EFSM", EFSM}, {"ENOCOMPATPROTO", ENOCOMPATPROTO},
        {"EMTHREAD", EMTHREAD}, {"EAGAIN", EAGAIN}, {"ENOTSOCK", ENOTSOCK},
        {"EHOSTUNREACH", EHOSTUNREACH}, {"EINVAL", EINVAL},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].value) < 0)
            return -1;
    for (int i = 0; i < N_SOCKOPTS; i++)
        if (PyModule_AddIntConstant(module, sockopts[i].constant, sockopts[i].option) < 0)
            return -1;
    return 0;
}
