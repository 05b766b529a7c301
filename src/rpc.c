/* RPC: the base type of Server and Client (docs/guide/calls.rst). This
 * file holds the type (construction, GC, attributes) and its lifecycle:
 * the ROUTER socket's set-up, bind/connect, start and stop. The work is
 * elsewhere, by direction (see rpc_object.h): outgoing calls in
 * rpc_calls.c, incoming messages in rpc_dispatch.c, sending in
 * rpc_outbox.c, connections in rpc_monitor.c.
 *
 * Lifecycle (rpc_lifecycle): NEW until the first bind() or connect()
 * creates the socket (OPEN); start() or the first call starts the reader
 * (RUNNING); stop() closes the socket and fails pending calls (STOPPED,
 * for good). */
#include "rpc.h"
#include "rpc_object.h"
#include "broker.h"
#include "convert.h"
#include "errors.h"
#include "green.h"
#include "registry.h"
#include "socket.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <structmember.h>
#include <zmq.h>

#define DEFAULT_MAX_MESSAGE_SIZE (64 * 1024 * 1024)

int
rpc_require_socket(RPCObject *self)
{
    if (self->sock != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, self->state == RPC_STOPPED
                    ? "pseud: this RPC is stopped"
                    : "pseud: you must connect or bind first");
    return -1;
}

/* ------------------------------------------------------------ lifecycle */

static void close_socket(RPCObject *self);
static void stop_plugin(RPCObject *self, PyObject *plugin, int noop);

static int
configure_plugin(PyObject *plugin)
{
    PyObject *r = PyObject_CallMethod(plugin, "configure", NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Worker mode (docs/guide/scaling.rst): every worker of a service needs
 * its own routing id at the broker's backend, the service id + '.' + this
 * process's random message-id prefix in hex; PROBE_ROUTER announces it to
 * the broker on each (re)connect, heartbeats notice a broker host gone. */
static int
worker_socket_options(RPCObject *self, void *s)
{
    char rid[256];
    Py_ssize_t n = PyBytes_GET_SIZE(self->user_id);
    memcpy(rid, PyBytes_AS_STRING(self->user_id), n);
    rid[n++] = '.';
    for (int k = 0; k < 8; k++)
        n += snprintf(rid + n, 3, "%02x", self->msgids.prefix[k]);
    int one = 1, ivl = 500, timeout = 1500;
    if (zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, n) != 0
        || zmq_setsockopt(s, ZMQ_PROBE_ROUTER, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) != 0
        || zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout)) != 0)
        return -1;
    return 0;
}

static int
setup_socket(RPCObject *self)
{
    if (self->sock != NULL)
        return 0;
    if (self->state == RPC_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: this RPC is stopped; create a new one");
        return -1;
    }
    void *s = zmq_socket(self->zmq_ctx, ZMQ_ROUTER);
    if (s == NULL) {
        errors_raise_what(self->st, zmq_errno(), "zmq_socket");
        return -1;
    }
    int one = 1, zero = 0;
    /* IMMEDIATE: no queueing into a connection that is not (or no longer)
     * up, so a call made while the peer is away gets EHOSTUNREACH and waits
     * in the outbox for it to come back, instead of vanishing in a dead pipe.
     * SNDTIMEO only matters to plugins' blocking sends: ours never block */
    int ms = convert_timeout_ms(self->timeout);
    int64_t maxsize = self->max_message_size;
    if (zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof(ms)) != 0
        || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0
        || (maxsize > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize)) != 0)
        || (self->is_server && self->user_id != Py_None && self->broker_id == NULL
            && zmq_setsockopt(s, ZMQ_ROUTING_ID, PyBytes_AS_STRING(self->user_id),
                              PyBytes_GET_SIZE(self->user_id)) != 0)
        || (self->broker_id != NULL && worker_socket_options(self, s) < 0)) {
        errors_raise_what(self->st, zmq_errno(), "configuring the socket");
        zmq_close(s);
        return -1;
    }
    if (fdwatch_init(&self->watch, self->st, s) < 0) {
        zmq_close(s);
        return -1;
    }
    self->sock = s;
    self->state = RPC_OPEN;
    if (rpc_monitor_open(self) < 0) {
        close_socket(self);
        return -1;
    }
    /* plugins configure the socket before the first bind/connect; if one
     * fails, no socket is left behind (a later bind must not serve a
     * server meant to be secured in plaintext) */
    if (!self->auth_noop && configure_plugin(self->auth_backend) < 0) {
        close_socket(self);
        return -1;
    }
    if (!self->heartbeat_noop && configure_plugin(self->heartbeat_backend) < 0) {
        PyObject *saved = errors_save();
        close_socket(self);
        stop_plugin(self, self->auth_backend, self->auth_noop);
        errors_restore(saved);
        return -1;
    }
    return 0;
}

static int
refuse_in_worker_mode(RPCObject *self)
{
    if (self->broker_id == NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "pseud: this Server is a broker's worker "
                    "(connect_broker): it serves only through its broker; use another "
                    "Server to bind or connect directly");
    return -1;
}

static PyObject *
rpc_bind(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = RPC(op);
    if (refuse_in_worker_mode(self) < 0)
        return NULL;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL || rpc_context_check_endpoint(self, ep) < 0 || setup_socket(self) < 0) {
        Py_XDECREF(ep);
        return NULL;
    }
    if (zmq_bind(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot bind %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    Py_DECREF(ep);
    PyObject *last = convert_last_endpoint(self->st, self->sock);
    if (last == NULL)
        return NULL;
    Py_XSETREF(self->last_endpoint, Py_NewRef(last));
    return last;
}

/* connect() and connect_broker(): set the socket up, connect it. */
static PyObject *
connect_to(RPCObject *self, PyObject *endpoint)
{
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL || rpc_context_check_endpoint(self, ep) < 0 || setup_socket(self) < 0) {
        Py_XDECREF(ep);
        return NULL;
    }
    /* Off by default: the probe, [routing id, ''], is no protocol v1
     * message (a gevent-era server logs a traceback for it); on request it
     * lets a server learn this peer's routing id before its first call */
    int one = 1;
    if (self->probe_router
        && zmq_setsockopt(self->sock, ZMQ_PROBE_ROUTER, &one, sizeof(one)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "setting ZMQ_PROBE_ROUTER");
        Py_DECREF(ep);
        return NULL;
    }
    self->has_connected = 1;
    if (zmq_connect(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot connect to %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    /* remembered: a connection closed by a protocol error is made again */
    int rc = rpc_monitor_connected(self, ep);
    Py_DECREF(ep);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
rpc_connect(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = RPC(op);
    if (refuse_in_worker_mode(self) < 0)
        return NULL;
    return connect_to(self, endpoint);
}

/* A CURVE key option from str or bytes (Z85 or raw: libzmq checks). */
static int
set_key(RPCObject *self, int option, PyObject *key, const char *what)
{
    PyObject *k = convert_identity(key, what);
    if (k == NULL)
        return -1;
    int rc = zmq_setsockopt(self->sock, option, PyBytes_AS_STRING(k), PyBytes_GET_SIZE(k));
    if (rc != 0)
        errors_raise_what(self->st, zmq_errno(), "%s %R (want 40 Z85 characters)", what, k);
    Py_DECREF(k);
    return rc != 0 ? -1 : 0;
}

/* connect_broker(endpoint, broker_public_key=None, public_key=None,
 * secret_key=None): make this Server a worker of the broker at `endpoint`
 * (docs/guide/scaling.rst); with the keys, over CURVE. libzmq copies the
 * options at each connect: keys given once stay for later brokers. */
static PyObject *
rpc_connect_broker(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"endpoint", "broker_public_key", "public_key", "secret_key", NULL};
    PyObject *endpoint, *server_key = Py_None, *public_key = Py_None, *secret_key = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO", kwlist, &endpoint, &server_key,
                                     &public_key, &secret_key))
        return NULL;
    RPCObject *self = RPC(op);
    if (!self->is_server || self->user_id == Py_None
        || PyBytes_GET_SIZE(self->user_id) > 200) {
        PyErr_SetString(PyExc_TypeError, "pseud: connect_broker() is for a Server named "
                        "by its service id (at most 200 bytes): "
                        "Server('svc').connect_broker('tcp://broker:5556')");
        return NULL;
    }
    if (self->broker_id == NULL) {
        if (self->state != RPC_NEW) {
            PyErr_SetString(PyExc_RuntimeError, "pseud: call connect_broker() before bind() "
                            "or connect(): a worker serves only through its broker");
            return NULL;
        }
        self->broker_id = PyBytes_FromFormat(BROKER_ID_PREFIX "%s", "");
        if (self->broker_id == NULL)
            return NULL;
        PyBytes_Concat(&self->broker_id, self->user_id);
        if (self->broker_id == NULL)
            return NULL;
    }
    int curve = server_key != Py_None;
    if (curve != (public_key != Py_None) || curve != (secret_key != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "pseud: CURVE to the broker needs "
                        "broker_public_key, public_key and secret_key together");
        return NULL;
    }
    if (setup_socket(self) < 0)
        return NULL;
    if (curve && (set_key(self, ZMQ_CURVE_SERVERKEY, server_key, "broker_public_key") < 0
                  || set_key(self, ZMQ_CURVE_PUBLICKEY, public_key, "public_key") < 0
                  || set_key(self, ZMQ_CURVE_SECRETKEY, secret_key, "secret_key") < 0))
        return NULL;
    return connect_to(self, endpoint);
}

/* Wait until libzmq's I/O thread has handled every command this thread
 * sent it so far (zmq_disconnect's `term` to the connection's session),
 * and what it was doing then (a lost connection's `pipe_term`: see
 * rpc_monitor.c).
 *
 * Why: with ZMQ_IMMEDIATE a connection's pipe is attached only once it is
 * up, so zmq_disconnect does not end our end of the pipe itself; it asks
 * the session (in the I/O thread) to end its end, which sends `pipe_term`
 * back to this socket, handled at its next command processing. Until then
 * the pipe still holds the peer's routing id and accepts messages, which
 * the dying session drops: a call made right after disconnect() (and
 * connect()) "succeeded" into it, left no trace in the outbox and waited
 * its whole timeout.
 *
 * How: the context has one I/O thread (pseud's own is never reconfigured,
 * and rpc_context.c shares no context with more)
 * and its mailbox is FIFO, so a listener bound and unbound now on a helper
 * socket is closed by that thread after the session was told to end; the
 * thread reports the close (ZMQ_EVENT_CLOSED) to a monitor we wait on. By
 * then `pipe_term` is in this socket's mailbox, and reading ZMQ_EVENTS
 * handles it: later sends to that peer get EHOSTUNREACH and wait in the
 * outbox until a new connection takes the routing id over. */
void
rpc_wait_io_thread(RPCObject *self)
{
    static unsigned long counter;
    char monitor_ep[96], bound[256];
    size_t len = sizeof(bound);
    int zero = 0, ms = 10000;       /* a safety net: the thread answers in microseconds */
    snprintf(monitor_ep, sizeof(monitor_ep), "inproc://pseud-io-barrier-%p-%lu",
             (void *)self, ++counter);
    void *helper = zmq_socket(self->zmq_ctx, ZMQ_PAIR);
    void *watch = zmq_socket(self->zmq_ctx, ZMQ_PAIR);
    int ok = helper != NULL && watch != NULL
             && zmq_setsockopt(helper, ZMQ_LINGER, &zero, sizeof(zero)) == 0
             && zmq_setsockopt(watch, ZMQ_LINGER, &zero, sizeof(zero)) == 0
             && zmq_setsockopt(watch, ZMQ_RCVTIMEO, &ms, sizeof(ms)) == 0
             && zmq_socket_monitor(helper, monitor_ep, ZMQ_EVENT_CLOSED) == 0
             && zmq_connect(watch, monitor_ep) == 0
             && zmq_bind(helper, "tcp://127.0.0.1:*") == 0
             && zmq_getsockopt(helper, ZMQ_LAST_ENDPOINT, bound, &len) == 0
             && zmq_unbind(helper, bound) == 0;
    /* the event: [event id and value, endpoint]; other threads may run meanwhile */
    char frame[256];
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ok = zmq_recv(watch, frame, sizeof(frame), 0) >= 0
             && zmq_recv(watch, frame, sizeof(frame), 0) >= 0;
        Py_END_ALLOW_THREADS
    }
    if (!ok)
        pseud_log(self->st, "warning",
                  "pseud: could not wait for libzmq's I/O thread (%s); a call made at "
                  "once to a peer just disconnected may be lost", zmq_strerror(zmq_errno()));
    if (watch != NULL)
        zmq_close(watch);
    if (helper != NULL)
        zmq_close(helper);
    int events;
    len = sizeof(events);
    zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &len);   /* handles `pipe_term` */
}

static PyObject *
rpc_disconnect(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = RPC(op);
    if (rpc_require_socket(self) < 0)
        return NULL;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL)
        return NULL;
    if (zmq_disconnect(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot disconnect from %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    rpc_monitor_disconnected(self, ep);
    Py_DECREF(ep);
    rpc_wait_io_thread(self);
    rpc_after_io(self);   /* reading ZMQ_EVENTS may have taken the reader's edge */
    Py_RETURN_NONE;
}

static PyObject *
rpc_start(PyObject *op, PyObject *unused)
{
    (void)unused;
    if (rpc_start_reader(RPC(op)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void
stop_plugin(RPCObject *self, PyObject *plugin, int noop)
{
    if (noop || plugin == NULL)
        return;
    PyObject *r = PyObject_CallMethod(plugin, "stop", NULL);
    if (r == NULL) {
        pseud_log(self->st, "error", "pseud: a plugin failed to stop");
        PyErr_Clear();
    }
    Py_XDECREF(r);
}

/* Close the ROUTER socket; the plugins' view of it is told first. */
static void
close_socket(RPCObject *self)
{
    if (self->socket_obj != NULL) {
        socket_detach(self->socket_obj);
        Py_CLEAR(self->socket_obj);
    }
    /* the monitor goes with the socket it watches */
    rpc_monitor_close(self);
    /* the watchers must go before the fd they watch */
    fdwatch_close(&self->watch);
    if (self->sock != NULL) {
        zmq_close(self->sock);
        self->sock = NULL;
    }
    if (self->state != RPC_STOPPED)
        self->state = RPC_NEW;     /* a failed set-up leaves nothing behind */
}

void
rpc_stop_now(RPCObject *self)
{
    if (self->state == RPC_STOPPED)
        return;
    PyObject *saved = errors_save();
    self->state = RPC_STOPPED;
    green_watcher_close(self->deadline_timer);
    Py_CLEAR(self->deadline_timer);
    green_watcher_close(self->retry_timer);
    Py_CLEAR(self->retry_timer);
    /* close first: once the security plugin has left the ZAP handler, no
     * handshake may still reach this socket */
    close_socket(self);
    stop_plugin(self, self->auth_backend, self->auth_noop);
    stop_plugin(self, self->heartbeat_backend, self->heartbeat_noop);
    rpc_outbox_drop_all(self);
    workers_close(self->st, &self->workers);
    /* the parked reader wakes, sees the state and returns */
    rpc_release_reader(self);
    /* outstanding calls fail instead of hanging */
    rpc_fail_all_calls(self);
    errors_restore(saved);
}

static PyObject *
rpc_stop(PyObject *op, PyObject *unused)
{
    (void)unused;
    rpc_stop_now(RPC(op));
    Py_RETURN_NONE;
}
/* ----------------------------------------------------------- the type */

/* A plugin whose class sets `_pseud_noop = True` is never called: 1, 0, -1. */
static int
plugin_is_noop(PyObject *plugin)
{
    PyObject *flag = PyObject_GetAttrString(plugin, "_pseud_noop");
    if (flag == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int res = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return res;
}

static int
rpc_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    RPCObject *self = RPC(op);
    static char *kwlist[] = {"user_id", "peer_routing_id", "is_server", "timeout",
                             "registry", "packer", "proxy_to", "auth_backend",
                             "heartbeat_backend", "max_message_size", "probe_router",
                             "context", NULL};
    PyObject *user_id = Py_None, *peer = Py_None, *registry = Py_None, *packer = Py_None;
    PyObject *proxy_to = Py_None, *auth = Py_None, *hb = Py_None, *context = Py_None;
    int is_server = 0, probe_router = 0;
    double timeout = 5.0;
    long long max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOpdOOOOOLpO:RPC", kwlist, &user_id,
                                     &peer, &is_server, &timeout, &registry, &packer,
                                     &proxy_to, &auth, &hb, &max_message_size,
                                     &probe_router, &context))
        return -1;
    if (!(timeout > 0) || !isfinite(timeout)) {
        PyErr_SetString(PyExc_ValueError,
                        "pseud: timeout must be a positive, finite number of seconds");
        return -1;
    }
    if (self->state == RPC_OPEN || self->state == RPC_RUNNING) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: RPC already initialised");
        return -1;
    }
    pseud_state *st = self->st;
    PyObject *uid = convert_identity(user_id, "user_id");
    if (uid == NULL)
        return -1;
    PyObject *pid = convert_identity(peer, "peer_routing_id");
    if (pid == NULL) {
        Py_DECREF(uid);
        return -1;
    }
    Py_XSETREF(self->user_id, uid);
    Py_XSETREF(self->peer_routing_id, pid);
    self->is_server = is_server;
    self->probe_router = probe_router;
    self->timeout = timeout;
    self->max_message_size = max_message_size;
    if (registry == NULL || registry == Py_None) {
        registry = st->global_registry;
    }
    else if (!PyObject_TypeCheck(registry, st->Registry_Type)) {
        PyErr_Format(PyExc_TypeError, "pseud: registry must come from create_local_registry(), not %.100s",
                     Py_TYPE(registry)->tp_name);
        return -1;
    }
    Py_XSETREF(self->registry, Py_NewRef(registry));
    if (packer == Py_None)
        packer = st->default_packer;
    else if (!PyObject_TypeCheck(packer, st->Packer_Type)) {
        PyErr_SetString(PyExc_TypeError, "pseud: packer must be a pseud.packer.Packer");
        return -1;
    }
    Py_XSETREF(self->packer, Py_NewRef(packer));
    if (proxy_to != Py_None && !PyObject_TypeCheck(proxy_to, st->RPC_Type)) {
        PyErr_Format(PyExc_TypeError, "pseud: proxy_to must be another Server or Client, not %.100s",
                     Py_TYPE(proxy_to)->tp_name);
        return -1;
    }
    Py_XSETREF(self->proxy_to, Py_NewRef(proxy_to));
    Py_XSETREF(self->auth_backend, Py_NewRef(auth));
    Py_XSETREF(self->heartbeat_backend, Py_NewRef(hb));
    self->auth_noop = auth == Py_None;
    self->heartbeat_noop = hb == Py_None;
    if ((!self->auth_noop && (self->auth_noop = plugin_is_noop(auth)) < 0)
        || (!self->heartbeat_noop && (self->heartbeat_noop = plugin_is_noop(hb)) < 0))
        return -1;
    /* a plugin that only configures the socket ('heartbeat': libzmq's ZMTP
     * heartbeats) sets `_pseud_per_message = False`: no call per message */
    self->heartbeat_hook = !self->heartbeat_noop;
    if (self->heartbeat_hook) {
        PyObject *flag = PyObject_GetAttrString(hb, "_pseud_per_message");
        if (flag == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();
        }
        else {
            int per_message = PyObject_IsTrue(flag);
            Py_DECREF(flag);
            if (per_message < 0)
                return -1;
            self->heartbeat_hook = per_message;
        }
    }
    return rpc_context_choose(self, context);
}

static PyObject *
bound_builtin(PyObject *self, PyMethodDef *def)
{
    return PyCFunction_NewEx(def, self, NULL);
}

/* The callbacks the hub and the worker greenlets call. Bound builtins,
 * made once per RPC and not attributes of the type. */
static PyMethodDef on_ready_def = {"_on_ready", (PyCFunction)(void (*)(void))rpc_on_ready,
                                   METH_FASTCALL, NULL};
static PyMethodDef on_deadline_def = {"_on_deadline", rpc_on_deadline, METH_NOARGS, NULL};
static PyMethodDef on_retry_def = {"_on_retry", rpc_on_retry, METH_NOARGS, NULL};
static PyMethodDef worker_loop_def = {"_worker_loop", rpc_worker_loop, METH_NOARGS, NULL};

static PyObject *
rpc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    RPCObject *self = (RPCObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->st = st;
    self->module = PyType_GetModuleByDef(type, &pseud_module_def);
    Py_XINCREF(self->module);
    self->state = RPC_NEW;
    self->watch.fd = -1;
    self->mon_watch.fd = -1;
    self->zmq_ctx = st->zmq_ctx;
    self->timeout = 5.0;
    self->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    self->auth_noop = self->heartbeat_noop = 1;
    self->user_id = Py_NewRef(Py_None);
    self->peer_routing_id = Py_NewRef(Py_None);
    self->registry = Py_NewRef(st->global_registry);
    self->packer = Py_NewRef(st->default_packer);
    self->proxy_to = Py_NewRef(Py_None);
    self->last_endpoint = Py_NewRef(Py_None);
    msgpack_sbuffer_init(&self->sbuf);
    msgid_init(&self->msgids);
    self->future_pool = PyDict_New();
    self->on_ready = bound_builtin((PyObject *)self, &on_ready_def);
    self->on_deadline = bound_builtin((PyObject *)self, &on_deadline_def);
    self->on_retry = bound_builtin((PyObject *)self, &on_retry_def);
    if (self->future_pool == NULL || rpc_outbox_init(self) < 0 || self->on_ready == NULL
        || self->on_deadline == NULL || self->on_retry == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    PyObject *loop = bound_builtin((PyObject *)self, &worker_loop_def);
    int rc = loop == NULL ? -1 : workers_init(&self->workers, rpc_run_work, self, loop);
    Py_XDECREF(loop);
    if (rc < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
rpc_traverse(PyObject *op, visitproc visit, void *arg)
{
    RPCObject *self = RPC(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->module);
    Py_VISIT(self->user_id);
    Py_VISIT(self->peer_routing_id);
    Py_VISIT(self->registry);
    Py_VISIT(self->packer);
    Py_VISIT(self->proxy_to);
    Py_VISIT(self->auth_backend);
    Py_VISIT(self->heartbeat_backend);
    Py_VISIT(self->last_endpoint);
    /* not self->context: see rpc_dealloc */
    int wret = fdwatch_traverse(&self->watch, visit, arg);
    if (wret != 0)
        return wret;
    Py_VISIT(self->socket_obj);
    Py_VISIT(self->reader_waiter);
    Py_VISIT(self->on_ready);
    Py_VISIT(self->on_retry);
    int vret = workers_traverse(&self->workers, visit, arg);
    if (vret != 0)
        return vret;
    vret = rpc_calls_traverse(self, visit, arg);
    if (vret != 0)
        return vret;
    vret = rpc_monitor_traverse(self, visit, arg);
    if (vret != 0)
        return vret;
    vret = rpc_outbox_traverse(self, visit, arg);
    if (vret != 0)
        return vret;
    Py_VISIT(self->retry_timer);
    Py_VISIT(self->dict);
    return 0;
}

static int
rpc_clear(PyObject *op)
{
    RPCObject *self = RPC(op);
    rpc_calls_clear(self);
    rpc_monitor_clear(self);
    Py_CLEAR(self->user_id);
    Py_CLEAR(self->peer_routing_id);
    Py_CLEAR(self->registry);
    Py_CLEAR(self->packer);
    Py_CLEAR(self->proxy_to);
    Py_CLEAR(self->auth_backend);
    Py_CLEAR(self->heartbeat_backend);
    Py_CLEAR(self->last_endpoint);
    Py_CLEAR(self->broker_id);
    fdwatch_clear(&self->watch);
    Py_CLEAR(self->socket_obj);
    Py_CLEAR(self->reader_waiter);
    Py_CLEAR(self->on_ready);
    Py_CLEAR(self->on_retry);
    workers_clear(&self->workers);
    rpc_outbox_clear(self);
    Py_CLEAR(self->retry_timer);
    Py_CLEAR(self->dict);
    return 0;
}

static void
rpc_dealloc(PyObject *op)
{
    RPCObject *self = RPC(op);
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs(op);
    close_socket(self);
    fdwatch_close(&self->watch);
    green_watcher_close(self->deadline_timer);
    green_watcher_close(self->retry_timer);
    rpc_clear(op);
    /* a shared pyzmq context goes only now, after our socket: its last
     * reference terminating it would wait forever for that socket */
    Py_CLEAR(self->context);
    Py_CLEAR(self->context_foreign);
    msgpack_sbuffer_destroy(&self->sbuf);
    Py_CLEAR(self->module);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
get_timeout(PyObject *op, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble(RPC(op)->timeout);
}

static PyObject *
get_initialized(PyObject *op, void *closure)
{
    (void)closure;
    rpc_lifecycle state = RPC(op)->state;
    return PyBool_FromLong(state == RPC_OPEN || state == RPC_RUNNING);
}

static PyObject *
get_started(PyObject *op, void *closure)
{
    (void)closure;
    RPCObject *self = RPC(op);
    return PyBool_FromLong(self->state == RPC_RUNNING);
}

/* A read-only view: the deadline list relies on the pool owning its futures. */
static PyObject *
get_future_pool(PyObject *op, void *closure)
{
    (void)closure;
    return PyDictProxy_New(RPC(op)->future_pool);
}

static PyObject *
get_pending_sends(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(RPC(op)->outbox.size);
}

/* rpc.socket: the ROUTER socket as a Socket object, for plugins that set
 * options (plain_username, curve_server, zap_domain...). */
static PyObject *
get_socket(PyObject *op, void *closure)
{
    (void)closure;
    RPCObject *self = RPC(op);
    if (rpc_require_socket(self) < 0)
        return NULL;
    if (self->socket_obj != NULL && socket_handle(self->socket_obj) == NULL)
        Py_CLEAR(self->socket_obj);   /* a plugin closed its view: make a new one */
    if (self->socket_obj == NULL
        && (self->socket_obj = socket_wrap(self->st, self->sock, 0)) == NULL)
        return NULL;
    return Py_NewRef(self->socket_obj);
}

static PyGetSetDef rpc_getset[] = {
    {"socket", get_socket, NULL, "The RPC's ROUTER socket (a pseud Socket; the RPC owns it).", NULL},
    {"pending_sends", get_pending_sends, NULL,
     "Messages waiting for their peer to be reachable or to read.", NULL},
    {"future_pool", get_future_pool, NULL, "Pending calls: uuid -> future (read-only view).", NULL},
    {"timeout", get_timeout, NULL, "Seconds a call may take before it fails with gevent.Timeout.", NULL},
    {"initialized", get_initialized, NULL, "True once bound or connected, until stopped.", NULL},
    {"started", get_started, NULL, "True while the reader runs.", NULL},
    {NULL},
};

static PyMemberDef rpc_members[] = {
    {"user_id", T_OBJECT, offsetof(RPCObject, user_id), READONLY, "This peer's identity, as given (str or bytes; None when unset)."},
    {"peer_routing_id", T_OBJECT, offsetof(RPCObject, peer_routing_id), READONLY, "Routing id calls go to, as given (str or bytes; None when unset)."},
    {"registry", T_OBJECT, offsetof(RPCObject, registry), READONLY, "The registry incoming calls are looked up in."},
    {"packer", T_OBJECT, offsetof(RPCObject, packer), READONLY, "The msgpack Packer."},
    {"proxy_to", T_OBJECT, offsetof(RPCObject, proxy_to), READONLY, "RPC whose registry serves names this one lacks."},
    {"auth_backend", T_OBJECT, offsetof(RPCObject, auth_backend), READONLY, "Security plugin instance."},
    {"heartbeat_backend", T_OBJECT, offsetof(RPCObject, heartbeat_backend), READONLY, "Heartbeat plugin instance."},
    {"last_endpoint", T_OBJECT, offsetof(RPCObject, last_endpoint), READONLY, "Endpoint of the last bind(), resolved."},
    {"__dictoffset__", T_PYSSIZET, offsetof(RPCObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(RPCObject, weakreflist), READONLY, NULL},
    {NULL},
};

static PyMethodDef rpc_methods[] = {
    {"bind", rpc_bind, METH_O, "bind($self, endpoint, /)\n--\n\nBind the socket; return the resolved endpoint."},
    {"connect", rpc_connect, METH_O, "connect($self, endpoint, /)\n--\n\nConnect the socket."},
    {"connect_broker", (PyCFunction)(void (*)(void))rpc_connect_broker,
     METH_VARARGS | METH_KEYWORDS,
     "connect_broker($self, /, endpoint, broker_public_key=None, public_key=None, secret_key=None)\n--\n\n"
     "Serve as a worker of the broker at endpoint (before any bind/connect)."},
    {"disconnect", rpc_disconnect, METH_O, "disconnect($self, endpoint, /)\n--\n\nDisconnect the socket from endpoint."},
    {"start", rpc_start, METH_NOARGS, "start($self, /)\n--\n\nStart the background reader (harmless if running)."},
    {"stop", rpc_stop, METH_NOARGS, "stop($self, /)\n--\n\nStop the reader and plugins, close the socket; pending calls fail. Idempotent."},
    {"close", rpc_stop, METH_NOARGS, "close($self, /)\n--\n\nAlias of stop()."},
    {"send_to", rpc_send_to, METH_O, "send_to($self, user_id, /)\n--\n\nA proxy whose calls go to that peer."},
    {"send_message", rpc_send_message, METH_O,
     "send_message($self, frames, /)\n--\n\nSend a multipart message on the RPC's socket (for plugins); "
     "frames are bytes-like, or str sent as UTF-8."},
    {"send_work", (PyCFunction)(void (*)(void))rpc_send_work_method, METH_VARARGS | METH_KEYWORDS,
     "send_work($self, user_id, name, /, *args, **kwargs)\n--\n\nSend WORK; return a future."},
    {"_hold_monitor", rpc_monitor_hold, METH_O,
     "_hold_monitor($self, flag, /)\n--\n\nTests: leave the socket monitor's events waiting "
     "while flag is true (the reader still hears them first when it needs to)."},
    {NULL},
};

static PyType_Slot rpc_slots[] = {
    {Py_tp_doc, "RPC(user_id=None, peer_routing_id=None, is_server=False, timeout=5.0, "
                "registry=None, packer=None, proxy_to=None, auth_backend=None, "
                "heartbeat_backend=None, max_message_size=67108864, probe_router=False, context=None)\n--\n\n"
                "Base of Server and Client: a ROUTER socket speaking pseud protocol v1."},
    {Py_tp_new, rpc_new},
    {Py_tp_init, rpc_init},
    {Py_tp_getattro, rpc_getattro},
    {Py_tp_traverse, rpc_traverse},
    {Py_tp_clear, rpc_clear},
    {Py_tp_dealloc, rpc_dealloc},
    {Py_tp_methods, rpc_methods},
    {Py_tp_members, rpc_members},
    {Py_tp_getset, rpc_getset},
    {0, NULL},
};

static PyType_Spec rpc_spec = {
    .name = "pseud._pseud.RPC",
    .basicsize = sizeof(RPCObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = rpc_slots,
};

int
rpc_init_module(PyObject *module, pseud_state *st)
{
    st->RPC_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &rpc_spec, NULL);
    if (st->RPC_Type == NULL || PyModule_AddType(module, st->RPC_Type) < 0)
        return -1;
    return rpc_calls_init_module(module, st);
}
