/* Connections of an RPC's socket. libzmq's socket monitor (an inproc PAIR,
 * read through fdwatch like the socket itself) says when a connection
 * comes and goes; this file owns that monitor and what follows from it:
 *
 *  - which peer each connection carries: the fd of every message's
 *    connection (ZMQ_SRCFD) is compared with what we know of it, so a lost
 *    connection names its peer (a Client also knows it from the start:
 *    its peer_routing_id);
 *  - a peer lost (no live connection left to it): its calls in flight fail
 *    at once with PeerGoneError, the security plugin forgets its routing
 *    id (unregister_routing_id), and, if it had connected to us (a
 *    server's client), send_to() it fails at once until it is back;
 *  - a connect()ed endpoint whose connection libzmq closed for a protocol
 *    error (a frame over max_message_size, a peer not speaking ZMTP): libzmq
 *    does not reconnect then, so we do, with one warning;
 *  - an accepted connection that our libzmq closed (not the peer): a
 *    warning naming the peer.
 *
 * Order. The events come on their own socket, so a message can be handled
 * before or after the events of its connection, and a reconnected peer's
 * new connection can deliver messages before its old connection's
 * DISCONNECTED is heard; two connections of one routing id overlap. What
 * libzmq does guarantee (one I/O thread) is that a connection's ACCEPTED or
 * CONNECTED is queued before any of its messages reaches the socket, and
 * that a DISCONNECTED is queued before its fd is closed (so before the
 * number can be given to another connection). Hence the rule: a DISCONNECTED
 * never declares a peer lost while a newer connection of that peer is
 * alive or has delivered a message. Three things keep it:
 *  - a message whose fd we know nothing of hears the waiting events first,
 *    and who is lost is decided only after that message is counted;
 *  - who is lost is decided only when a run of events reached the end of
 *    the queue (the newer connection's ACCEPTED may be next in it);
 *  - a message that matched its fd's peer before the monitor was heard may
 *    be from the fd's next connection (the same number, reused): if that
 *    connection begins in the same run, it takes over the peer until it
 *    says otherwise (a message from another peer re-decides the first).
 * What stays: a new connection that has not spoken yet carries no known
 * peer (an accepted one's routing id comes with its first message), so if
 * its events are heard before that message, the peer is declared lost and
 * is back at that message (docs/guide/errors.rst).
 *
 * Heartbeats (docs/guide/heartbeats.rst) are libzmq's ZMTP PING/PONG, which
 * the 'heartbeat' plugin turns on: a peer that stops answering them is a
 * lost connection like any other. The cost per message is one compare;
 * everything else happens per connection. */
#include "rpc_object.h"
#include "errors.h"
#include "green.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#define MONITOR_EVENTS (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED \
                        | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED)
/* libzmq announces its own reconnection (CONNECT_RETRIED) right after the
 * DISCONNECTED event; this leaves room for a loaded machine */
#define RECONNECT_CHECK 0.2
#define GONE_MAX 4096           /* lost peers remembered for send_to() */
#define DRAIN_BATCH 256         /* events handled per run before yielding */

static PyObject *on_monitor(PyObject *op, PyObject *const *args, Py_ssize_t nargs);
static PyObject *on_reconnect(PyObject *op, PyObject *unused);

static PyMethodDef on_monitor_def = {"_on_monitor", (PyCFunction)(void (*)(void))on_monitor,
                                     METH_FASTCALL, NULL};
static PyMethodDef on_reconnect_def = {"_on_reconnect", on_reconnect, METH_NOARGS, NULL};

/* ------------------------------------------------------------ the table */

static rpc_conn *
conn_slot(RPCObject *self, int fd, int grow)
{
    if (fd < 0)
        return NULL;
    if (fd >= self->nconns) {
        if (!grow)
            return NULL;
        int n = self->nconns > 0 ? self->nconns : 64;
        while (n <= fd)
            n *= 2;
        rpc_conn *conns = realloc(self->conns, (size_t)n * sizeof(*conns));
        if (conns == NULL)
            return NULL;
        for (int i = self->nconns; i < n; i++)
            conns[i] = (rpc_conn){.dupfd = -1};
        self->conns = conns;
        self->nconns = n;
    }
    return &self->conns[fd];
}

static void
conn_forget(rpc_conn *c)
{
    Py_CLEAR(c->routing);
    Py_CLEAR(c->user_id);
    if (c->dupfd >= 0)
        close(c->dupfd);
    c->dupfd = -1;
    c->live = 0;
    c->accepted = 0;
    c->inherited = 0;
}

/* The hand-over of a slot's peer to the fd's next connection is only
 * good within one run of events (see connection_lost). */
static void
prevs_clear(RPCObject *self)
{
    for (int i = 0; i < self->nconns && self->mon_prevs > 0; i++) {
        rpc_conn *c = &self->conns[i];
        if (c->prev_routing != NULL) {
            Py_CLEAR(c->prev_routing);
            Py_CLEAR(c->prev_user_id);
            self->mon_prevs--;
        }
    }
    self->mon_prevs = 0;
}

/* A connection began on slot c's fd: forget the last one, and take over
 * its peer if connection_lost handed it over. */
static void
conn_begin(RPCObject *self, rpc_conn *c, int accepted)
{
    conn_forget(c);
    c->live = 1;
    c->accepted = accepted;
    c->heard = self->mon_runs - 1;      /* nothing heard on it yet */
    if (c->prev_routing != NULL) {
        c->routing = c->prev_routing;   /* the references move */
        c->user_id = c->prev_user_id;
        c->prev_routing = c->prev_user_id = NULL;
        c->inherited = 1;
        self->mon_prevs--;
    }
}

static int
same_bytes(PyObject *a, PyObject *b)
{
    return PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b)
           && memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), PyBytes_GET_SIZE(a)) == 0;
}

/* Another live connection still reaches `routing` (ROUTER_HANDOVER: a peer
 * may be back on a new connection before the old one's end is heard). */
static int
still_reachable(RPCObject *self, PyObject *routing)
{
    for (int i = 0; i < self->nconns; i++) {
        rpc_conn *c = &self->conns[i];
        if (c->live && c->routing != NULL && same_bytes(c->routing, routing))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ lost peers */

static void
gone_add(RPCObject *self, PyObject *key, PyObject *why)
{
    if (key == NULL || PyBytes_GET_SIZE(key) == 0)
        return;
    if (PyDict_GET_SIZE(self->gone) >= GONE_MAX) {
        /* forget the oldest (dicts keep insertion order) */
        Py_ssize_t pos = 0;
        PyObject *first, *value;
        if (PyDict_Next(self->gone, &pos, &first, &value)) {
            Py_INCREF(first);
            if (PyDict_DelItem(self->gone, first) < 0)
                PyErr_Clear();
            Py_DECREF(first);
        }
    }
    if (PyDict_SetItem(self->gone, key, why) < 0)
        PyErr_Clear();
}

static void
gone_remove(RPCObject *self, PyObject *key)
{
    if (key == NULL || self->gone == NULL || PyDict_GET_SIZE(self->gone) == 0)
        return;
    if (PyDict_DelItem(self->gone, key) < 0)
        PyErr_Clear();     /* KeyError: it was not lost */
}

int
rpc_monitor_check_gone(RPCObject *self, PyObject *routing)
{
    if (self->gone == NULL || PyDict_GET_SIZE(self->gone) == 0)
        return 0;
    PyObject *why = PyDict_GetItemWithError(self->gone, routing);
    if (why == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyErr_SetObject(self->st->PeerGoneError, why);
    return -1;
}

/* "ip:port" of the peer of an accepted connection, into buf. */
static void
peer_address(int fd, char *buf, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    buf[0] = '\0';
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    }
    else if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    else {
        return;     /* ipc: no address worth naming */
    }
    snprintf(buf, size, "%s:%u", host, port);
}

/* Who closed an accepted connection. Our dup of its fd keeps the socket:
 * if the peer closed it, the socket reads end-of-file (or a reset); if it
 * is still open (nothing to read, or the rest of a frame libzmq refused),
 * our libzmq closed it: a protocol error or a heartbeat timeout. */
static int
closed_here(int dupfd)
{
    if (dupfd < 0)
        return 0;
    char byte;
    ssize_t n = recv(dupfd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* No connection reaches `routing` any more. Never raises. */
static void
peer_lost(RPCObject *self, PyObject *routing, PyObject *user_id, const char *where,
          int accepted)
{
    PyObject *why = PyUnicode_FromFormat("pseud: lost the connection to peer %R (%s)",
                                         routing, where);
    if (why == NULL) {
        PyErr_Clear();
        return;
    }
    rpc_fail_calls_to(self, routing, why);
    if (!self->auth_noop && PyObject_HasAttrString(self->auth_backend, "unregister_routing_id")) {
        PyObject *r = PyObject_CallMethod(self->auth_backend, "unregister_routing_id", "O",
                                          routing);
        if (r == NULL) {
            PyObject *exc = errors_save();
            pseud_log(self->st, "error", "pseud: the security plugin failed to forget %R: %R",
                      routing, exc ? exc : Py_None);
            Py_XDECREF(exc);
        }
        Py_XDECREF(r);
    }
    /* a peer that connected to us comes back only by connecting again and
     * speaking; one we connected to, libzmq reconnects to, and calls to it
     * wait in the outbox meanwhile */
    if (accepted) {
        gone_add(self, routing, why);
        if (user_id != NULL && !same_bytes(user_id, routing))
            gone_add(self, user_id, why);
    }
    Py_DECREF(why);
}

/* ------------------------------------------------------------ events */

/* The connect()ed endpoint a connection event is about, or NULL (not
 * ours: an accepted connection). Borrowed. */
static PyObject *
our_endpoint(RPCObject *self, const char *ep, size_t len, int accepted)
{
    if (accepted || self->endpoints == NULL)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(self->endpoints);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(self->endpoints, i);
        if ((size_t)PyBytes_GET_SIZE(e) == len && memcmp(PyBytes_AS_STRING(e), ep, len) == 0)
            return e;
    }
    /* libzmq names a resolved address (a host name given to connect()
     * comes back as its IP): with one endpoint, that is it */
    return n == 1 ? PyList_GET_ITEM(self->endpoints, 0) : NULL;
}

static void
reconnect_not_due(RPCObject *self, const char *ep, size_t len)
{
    PyObject *e = our_endpoint(self, ep, len, 0);
    if (e != NULL && self->reconnect_due != NULL && PyDict_GET_SIZE(self->reconnect_due) > 0
        && PyDict_DelItem(self->reconnect_due, e) < 0)
        PyErr_Clear();
}

static void
connection_lost(RPCObject *self, int fd, const char *ep, size_t len)
{
    rpc_conn *c = conn_slot(self, fd, 0);
    PyObject *routing = c != NULL ? Py_XNewRef(c->routing) : NULL;
    PyObject *user_id = c != NULL ? Py_XNewRef(c->user_id) : NULL;
    int accepted = c != NULL && c->accepted;
    int here = 0;
    char addr[INET6_ADDRSTRLEN + 8] = "";
    if (c != NULL && c->dupfd >= 0) {
        here = closed_here(c->dupfd);
        peer_address(c->dupfd, addr, sizeof(addr));
    }
    if (c != NULL) {
        /* A message came on this fd since the last run of events ended:
         * it may be from the fd's NEXT connection, whose ACCEPTED or
         * CONNECTED is queued behind this event (libzmq closes the fd
         * after sending DISCONNECTED, and the kernel gives the next
         * connection the lowest free number). Its peer is then known only
         * from that message, which matched this slot, so it goes over to
         * the next connection on this fd if one begins in this run. */
        if (c->routing != NULL && c->heard == self->mon_runs && c->prev_routing == NULL) {
            c->prev_routing = Py_NewRef(c->routing);
            c->prev_user_id = Py_XNewRef(c->user_id);
            self->mon_prevs++;
        }
        conn_forget(c);
    }

    PyObject *mine = our_endpoint(self, ep, len, accepted);
    if (mine != NULL && self->reconnect_due != NULL) {
        /* libzmq retries a connection that failed, not one it closed for a
         * protocol error: unless its retry is announced, we reconnect */
        if (PyDict_SetItem(self->reconnect_due, mine, Py_None) < 0)
            PyErr_Clear();
        else if (self->reconnect_timer == NULL) {
            self->reconnect_timer = green_timer(self->st, RECONNECT_CHECK, self->on_reconnect,
                                                NULL);
            if (self->reconnect_timer == NULL)
                PyErr_Clear();
        }
    }
    char where[320];
    snprintf(where, sizeof(where), "%.*s%s%s", (int)(len < 200 ? len : 200), ep,
             addr[0] ? " from " : "", addr);
    if (here)
        pseud_log(self->st, "warning",
                  "pseud: closed the connection of peer %R (%s): it sent a frame over "
                  "max_message_size (%lld bytes) or broke the ZMTP protocol, or stopped "
                  "answering heartbeats", routing != NULL ? routing : Py_None, where,
                  self->max_message_size);
    if (routing != NULL) {
        /* decided once every waiting event is handled: the peer may be
         * back already on a new connection (its CONNECTED event follows) */
        PyObject *entry = Py_BuildValue("(OOsi)", routing, user_id ? user_id : Py_None,
                                        where, accepted);
        if (entry == NULL || PyList_Append(self->lost_pending, entry) < 0)
            PyErr_Clear();
        Py_XDECREF(entry);
    }
    Py_XDECREF(routing);
    Py_XDECREF(user_id);
}

static void
handle_event(RPCObject *self, unsigned event, int fd, const char *ep, size_t len)
{
    rpc_conn *c;
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        c = conn_slot(self, fd, 1);
        if (c == NULL)
            return;
        conn_begin(self, c, 1);
        /* keep the socket open past libzmq's close, to see who closed it */
        c->dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        return;
    case ZMQ_EVENT_CONNECTED:
        c = conn_slot(self, fd, 1);
        if (c != NULL) {
            conn_begin(self, c, 0);
            /* a Client knows who it connects to, before any message */
            if (!self->is_server && self->peer_routing_id != Py_None) {
                Py_XSETREF(c->routing, Py_NewRef(self->peer_routing_id));
                Py_CLEAR(c->user_id);
                c->inherited = 0;
            }
        }
        reconnect_not_due(self, ep, len);
        return;
    case ZMQ_EVENT_CONNECT_DELAYED:
    case ZMQ_EVENT_CONNECT_RETRIED:
        reconnect_not_due(self, ep, len);
        return;
    case ZMQ_EVENT_DISCONNECTED:
        connection_lost(self, fd, ep, len);
        return;
    default:
        return;
    }
}

/* The peers of the connections lost in this run of events: those that no
 * live connection reaches are lost. Never raises. */
static void
decide_lost(RPCObject *self)
{
    PyObject *pending = self->lost_pending;
    self->lost_pending = PyList_New(0);
    if (self->lost_pending == NULL) {
        self->lost_pending = pending;
        PyErr_Clear();
        return;
    }
    if (self->sock != NULL) {
        /* from now on a call to those peers must wait in the outbox (or
         * fail), not go into the pipe of a connection that ended. A
         * connection closed for a protocol error ends its session, which
         * asks the socket first (`term_req`): reading ZMQ_EVENTS hands that
         * on, then the I/O thread ends the pipe */
        int events;
        size_t elen = sizeof(events);
        zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &elen);
        rpc_wait_io_thread(self);
        rpc_after_io(self);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++) {
        PyObject *entry = PyList_GET_ITEM(pending, i);
        PyObject *routing = PyTuple_GET_ITEM(entry, 0), *user_id = PyTuple_GET_ITEM(entry, 1);
        const char *where = PyUnicode_AsUTF8(PyTuple_GET_ITEM(entry, 2));
        int accepted = (int)PyLong_AsLong(PyTuple_GET_ITEM(entry, 3));
        if (where == NULL) {
            PyErr_Clear();
            where = "?";
        }
        if (still_reachable(self, routing))
            continue;
        pseud_log(self->st, "debug", "pseud: peer %R disconnected (%s)", routing, where);
        peer_lost(self, routing, user_id == Py_None ? NULL : user_id, where, accepted);
    }
    Py_DECREF(pending);
}

/* Handle the monitor's waiting events, in order; then, if that reached
 * the end of them and `decide`, decide which peers are lost. 1 when every
 * waiting event was handled (a run of events ended), else 0. Never
 * raises. */
static int
monitor_drain(RPCObject *self, int decide)
{
    if (self->mon_sock == NULL || self->mon_draining)
        return 0;
    self->mon_draining = 1;
    PyObject *saved = errors_save();
    int emptied = 0;
    for (int i = 0; i < DRAIN_BATCH && self->mon_sock != NULL; i++) {
        /* an event is two frames: event number (16 bits) and value (32
         * bits, the fd here), then the endpoint; both arrive together */
        zmq_msg_t head, ep;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, self->mon_sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            emptied = 1;
            break;
        }
        zmq_msg_init(&ep);
        int whole = zmq_msg_more(&head) && zmq_msg_recv(&ep, self->mon_sock, ZMQ_DONTWAIT) >= 0;
        if (whole && zmq_msg_size(&head) >= 6) {
            uint16_t event;
            uint32_t value;
            memcpy(&event, zmq_msg_data(&head), sizeof(event));
            memcpy(&value, (char *)zmq_msg_data(&head) + 2, sizeof(value));
            handle_event(self, event, (int)value, zmq_msg_data(&ep), zmq_msg_size(&ep));
        }
        zmq_msg_close(&ep);
        zmq_msg_close(&head);
    }
    if (self->mon_sock != NULL)
        fdwatch_after_io(&self->mon_watch, ZMQ_POLLIN);
    if (emptied) {
        /* a run ended: hand-overs not taken up are void, and a message
         * from now on is known to come after every event so far */
        if (self->mon_prevs > 0)
            prevs_clear(self);
        self->mon_runs++;
        if (decide && PyList_GET_SIZE(self->lost_pending) > 0)
            decide_lost(self);
    }
    if (PyErr_Occurred()) {
        pseud_log(self->st, "error", "pseud: error while handling a connection event");
        PyErr_Clear();
    }
    errors_restore(saved);
    self->mon_draining = 0;
    return emptied;
}

static PyObject *
on_monitor(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RPCObject *self = RPC(op);
    if (self->mon_sock == NULL)
        Py_RETURN_NONE;
    int events = fdwatch_fired(&self->mon_watch, args, nargs, ZMQ_POLLIN, NULL);
    if ((events & ZMQ_POLLIN) && !self->mon_held)
        monitor_drain(self, 1);
    Py_RETURN_NONE;
}

PyObject *
rpc_monitor_hold(PyObject *op, PyObject *flag)
{
    RPCObject *self = RPC(op);
    int held = PyObject_IsTrue(flag);
    if (held < 0)
        return NULL;
    self->mon_held = held;
    if (!held)
        monitor_drain(self, 1);
    Py_RETURN_NONE;
}

void
rpc_conn_learn(RPCObject *self, int fd, const char *routing, size_t len, const char *user_id)
{
    if (fd < 0 || self->mon_sock == NULL)
        return;
    /* the end of an earlier connection that had this fd, and the start of
     * this one, may not be heard yet: their events were queued before this
     * message, so hear them first; but decide who is lost only once this
     * message is counted (its peer is not lost: it just spoke) */
    int emptied = monitor_drain(self, 0);
    rpc_conn *c = conn_slot(self, fd, 1);
    if (c == NULL)
        return;
    PyObject *saved = errors_save();
    PyObject *r = PyBytes_FromStringAndSize(routing, (Py_ssize_t)len);
    PyObject *u = user_id != NULL && user_id[0] ? PyBytes_FromString(user_id) : NULL;
    if (r != NULL) {
        if (c->inherited && c->routing != NULL) {
            /* the peer handed over from the fd's previous connection was
             * not this one's: it may have no connection left */
            PyObject *entry = Py_BuildValue("(OOsi)", c->routing,
                                            c->user_id ? c->user_id : Py_None,
                                            "its connection ended", c->accepted);
            if (entry == NULL || PyList_Append(self->lost_pending, entry) < 0)
                PyErr_Clear();
            Py_XDECREF(entry);
        }
        Py_XSETREF(c->routing, r);
        Py_XSETREF(c->user_id, u);
        u = NULL;
        c->live = 1;
        c->inherited = 0;
        c->heard = self->mon_runs;
        /* back: send_to() reaches it again */
        gone_remove(self, c->routing);
        gone_remove(self, c->user_id);
    }
    Py_XDECREF(u);
    PyErr_Clear();
    if (emptied && PyList_GET_SIZE(self->lost_pending) > 0 && !self->mon_draining)
        decide_lost(self);
    PyErr_Clear();
    errors_restore(saved);
}

/* Timer: endpoints lost with no retry announced by libzmq are connected
 * again (one warning each). */
static PyObject *
on_reconnect(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = RPC(op);
    green_watcher_close(self->reconnect_timer);
    Py_CLEAR(self->reconnect_timer);
    if (self->sock == NULL || self->reconnect_due == NULL)
        Py_RETURN_NONE;
    monitor_drain(self, 1);     /* a retry announced meanwhile clears its entry */
    PyObject *due = PyDict_Keys(self->reconnect_due);
    if (due == NULL)
        return NULL;
    PyDict_Clear(self->reconnect_due);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(due) && self->sock != NULL; i++) {
        PyObject *ep = PyList_GET_ITEM(due, i);
        int known = PySequence_Contains(self->endpoints, ep);
        if (known <= 0) {
            PyErr_Clear();
            continue;       /* disconnect()ed meanwhile */
        }
        pseud_log(self->st, "warning",
                  "pseud: the connection to %s was closed by a protocol error (a frame "
                  "over max_message_size, %lld bytes, or a peer not speaking ZMTP), which "
                  "libzmq does not retry: connecting again", PyBytes_AS_STRING(ep),
                  self->max_message_size);
        zmq_disconnect(self->sock, PyBytes_AS_STRING(ep));   /* ENOENT: already ended */
        if (zmq_connect(self->sock, PyBytes_AS_STRING(ep)) != 0)
            pseud_log(self->st, "error", "pseud: could not connect to %s again: %s",
                      PyBytes_AS_STRING(ep), zmq_strerror(zmq_errno()));
    }
    Py_DECREF(due);
    rpc_after_io(self);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ lifecycle */

int
rpc_monitor_open(RPCObject *self)
{
    static unsigned long counter;
    char ep[96];
    int zero = 0;
    if (self->on_monitor == NULL
        && (self->on_monitor = PyCFunction_NewEx(&on_monitor_def, (PyObject *)self, NULL)) == NULL)
        return -1;
    if (self->on_reconnect == NULL
        && (self->on_reconnect = PyCFunction_NewEx(&on_reconnect_def, (PyObject *)self, NULL)) == NULL)
        return -1;
    if ((self->lost_pending == NULL && (self->lost_pending = PyList_New(0)) == NULL)
        || (self->endpoints == NULL && (self->endpoints = PyList_New(0)) == NULL)
        || (self->reconnect_due == NULL && (self->reconnect_due = PyDict_New()) == NULL)
        || (self->gone == NULL && (self->gone = PyDict_New()) == NULL))
        return -1;
    snprintf(ep, sizeof(ep), "inproc://pseud-monitor-%p-%lu", (void *)self, ++counter);
    if (zmq_socket_monitor(self->sock, ep, MONITOR_EVENTS) != 0) {
        errors_raise_what(self->st, zmq_errno(), "monitoring the socket");
        return -1;
    }
    /* no high-water mark: libzmq's I/O thread sends events with a blocking
     * send, and a server bound but not started reads none yet */
    void *pair = zmq_socket(self->zmq_ctx, ZMQ_PAIR);
    if (pair == NULL || zmq_setsockopt(pair, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(pair, ZMQ_RCVHWM, &zero, sizeof(zero)) != 0
        || zmq_connect(pair, ep) != 0) {
        errors_raise_what(self->st, zmq_errno(), "reading the socket's monitor");
        if (pair != NULL)
            zmq_close(pair);
        zmq_socket_monitor(self->sock, NULL, 0);
        return -1;
    }
    if (fdwatch_init(&self->mon_watch, self->st, pair) < 0) {
        zmq_close(pair);
        zmq_socket_monitor(self->sock, NULL, 0);
        return -1;
    }
    self->mon_sock = pair;
    return 0;
}

int
rpc_monitor_start(RPCObject *self)
{
    if (self->mon_sock == NULL)
        return 0;
    if (fdwatch_start(&self->mon_watch, self->on_monitor) < 0)
        return -1;
    /* events that came before: their edge may be gone */
    fdwatch_after_io(&self->mon_watch, ZMQ_POLLIN);
    return 0;
}

void
rpc_monitor_close(RPCObject *self)
{
    green_watcher_close(self->reconnect_timer);
    Py_CLEAR(self->reconnect_timer);
    if (self->mon_sock != NULL) {
        fdwatch_close(&self->mon_watch);
        if (self->sock != NULL)
            zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->mon_sock);
        self->mon_sock = NULL;
    }
    prevs_clear(self);
    for (int i = 0; i < self->nconns; i++)
        conn_forget(&self->conns[i]);
    free(self->conns);
    self->conns = NULL;
    self->nconns = 0;
    if (self->reconnect_due != NULL)
        PyDict_Clear(self->reconnect_due);
    if (self->lost_pending != NULL && PyList_SetSlice(self->lost_pending, 0, PY_SSIZE_T_MAX, NULL) < 0)
        PyErr_Clear();
    if (self->endpoints != NULL && PyList_SetSlice(self->endpoints, 0, PY_SSIZE_T_MAX, NULL) < 0)
        PyErr_Clear();
}

int
rpc_monitor_connected(RPCObject *self, PyObject *endpoint)
{
    if (self->endpoints == NULL)
        return 0;
    int known = PySequence_Contains(self->endpoints, endpoint);
    if (known != 0)
        return known < 0 ? -1 : 0;
    return PyList_Append(self->endpoints, endpoint);
}

void
rpc_monitor_disconnected(RPCObject *self, PyObject *endpoint)
{
    if (self->endpoints == NULL)
        return;
    PyObject *saved = errors_save();
    Py_ssize_t i = PySequence_Index(self->endpoints, endpoint);
    if (i >= 0)
        PySequence_DelItem(self->endpoints, i);
    if (self->reconnect_due != NULL && PyDict_GET_SIZE(self->reconnect_due) > 0)
        PyDict_DelItem(self->reconnect_due, endpoint);
    PyErr_Clear();
    errors_restore(saved);
}

int
rpc_monitor_traverse(RPCObject *self, visitproc visit, void *arg)
{
    int rc = fdwatch_traverse(&self->mon_watch, visit, arg);
    if (rc != 0)
        return rc;
    Py_VISIT(self->on_monitor);
    Py_VISIT(self->on_reconnect);
    Py_VISIT(self->reconnect_timer);
    Py_VISIT(self->endpoints);
    Py_VISIT(self->reconnect_due);
    Py_VISIT(self->gone);
    Py_VISIT(self->lost_pending);
    for (int i = 0; i < self->nconns; i++) {
        Py_VISIT(self->conns[i].routing);
        Py_VISIT(self->conns[i].user_id);
        Py_VISIT(self->conns[i].prev_routing);
        Py_VISIT(self->conns[i].prev_user_id);
    }
    return 0;
}

void
rpc_monitor_clear(RPCObject *self)
{
    fdwatch_clear(&self->mon_watch);
    Py_CLEAR(self->on_monitor);
    Py_CLEAR(self->on_reconnect);
    Py_CLEAR(self->reconnect_timer);
    Py_CLEAR(self->endpoints);
    Py_CLEAR(self->reconnect_due);
    Py_CLEAR(self->gone);
    Py_CLEAR(self->lost_pending);
    for (int i = 0; i < self->nconns; i++) {
        Py_CLEAR(self->conns[i].routing);
        Py_CLEAR(self->conns[i].user_id);
        Py_CLEAR(self->conns[i].prev_routing);
        Py_CLEAR(self->conns[i].prev_user_id);
    }
    self->mon_prevs = 0;
}
