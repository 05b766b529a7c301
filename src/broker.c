/* The load-balancing broker (docs/guide/scaling.rst): owns its two ROUTER
 * sockets, the worker table, the call table and the wait queue.
 *
 * Clients connect to the frontend, whose routing id is the service id, as
 * to a Server of that id. Workers (Servers in worker mode) connect to the
 * backend, whose routing id is "pseud-broker:" + service id, and announce
 * themselves with ZMQ_PROBE_ROUTER's empty message on every (re)connect.
 *
 * Everything runs in hub callbacks (the sockets' fd watches and a tick
 * timer) and never blocks or switches: frames are moved from one socket to
 * the other with zmq_msg_send; only the frames routing needs are read (type,
 * message id, the ZAP User-Id); no Python code runs per message.
 *
 * A call gets a slot in the call table; its 8-byte id on the backend is the
 * slot and a generation, so a stale or forged reply never finds a live call.
 *   client WORK  -> queued, then sent to the live worker with the fewest
 *                   calls in flight (below max_in_flight) as
 *                   [worker, '', v1, call id, WORK, body, caller's user id]
 *   worker OK/ERROR for a call id -> to the caller with its own message id
 *   worker WORK whose id is 16 bytes + a user id (its send_to) -> to that
 *                   client under a call id; the client's reply goes back
 *   a worker gone (a send fails EHOSTUNREACH; checked on the backend
 *   monitor's DISCONNECTED events and every second) -> its calls get
 *   ERROR ConnectionAbortedError: they may have run, so never retried.
 *
 * This file owns the type: construction, the sockets and their options,
 * bind/start/stop, stats, GC and the getsets; the routing itself is in
 * broker_route.c, the shared layout in broker_object.h. */
#include "broker.h"
#include "broker_object.h"
#include "convert.h"
#include "errors.h"
#include "green.h"
#include "socket.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define TICK 0.1                /* the timer: queue deadlines, sweeps */

static void
broker_close(BrokerObject *b)
{
    if (b->closed)
        return;
    b->closed = 1;
    b->running = 0;
    fdwatch_close(&b->wf);
    fdwatch_close(&b->wb);
    fdwatch_close(&b->wm);
    green_watcher_close(b->tick);
    Py_CLEAR(b->tick);
    if (b->front_view != NULL)
        socket_detach(b->front_view);
    if (b->back_view != NULL)
        socket_detach(b->back_view);
    if (b->back != NULL)
        zmq_socket_monitor(b->back, NULL, 0);
    if (b->front != NULL)
        zmq_close(b->front);
    if (b->back != NULL)
        zmq_close(b->back);
    if (b->mon != NULL)
        zmq_close(b->mon);
    b->front = b->back = b->mon = NULL;
    Py_CLEAR(b->context);       /* only now: its termination would wait for them */
    for (uint32_t c = 0; c < b->nslots / CHUNK; c++) {
        for (uint32_t k = 0; k < CHUNK; k++) {
            zmq_msg_close(&b->chunks[c][k].peer);
            zmq_msg_close(&b->chunks[c][k].uuid);
            zmq_msg_close(&b->chunks[c][k].body);
            zmq_msg_close(&b->chunks[c][k].aux);
        }
        PyMem_Free(b->chunks[c]);
        b->chunks[c] = NULL;
    }
    b->nslots = 0;
    b->free_head = b->q_head = b->q_tail = NIL;
    b->q_len = b->in_flight = 0;
    for (int w = 0; w < b->nworkers; w++)
        PyMem_Free(b->workers[w].rid);
    PyMem_Free(b->workers);
    b->workers = NULL;
    b->nworkers = 0;
}

static PyMethodDef on_ready_def = {"_on_ready", (PyCFunction)(void (*)(void))broker_on_ready,
                                   METH_FASTCALL, NULL};
static PyMethodDef on_monitor_def = {
    "_on_monitor", (PyCFunction)(void (*)(void))broker_on_monitor, METH_FASTCALL, NULL};
static PyMethodDef on_tick_def = {"_on_tick", broker_on_tick, METH_NOARGS, NULL};

static int
set_router_options(pseud_state *st, void *s, const char *rid, size_t rid_len,
                   long long max_message_size, int heartbeat_ms)
{
    int one = 1, zero = 0, hb_timeout = heartbeat_ms * 3;
    int64_t maxsize = max_message_size;
    if (zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, rid_len) != 0
        || (maxsize > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize)) != 0)
        || (heartbeat_ms > 0
            && (zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &heartbeat_ms, sizeof(int)) != 0
                || zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(int)) != 0))) {
        errors_raise_what(st, zmq_errno(), "configuring a broker socket");
        return -1;
    }
    return 0;
}

static int
broker_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"service_id", "max_in_flight", "max_queue", "timeout",
                             "heartbeat", "max_message_size", "zap", NULL};
    BrokerObject *b = B(op);
    PyObject *sid_in;
    int max_in_flight = 64;      /* pseud/broker.py: DEFAULT_MAX_IN_FLIGHT */
    Py_ssize_t max_queue = 1000;
    double timeout = 5.0, heartbeat = 0.5;
    long long max_message_size = 64 * 1024 * 1024;
    /* a ZAP-checked plugin on either socket: pseud's own context, where the
     * ZAP handler is; so by default, and pseud.Broker says when it is not */
    int zap = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|indd$Lp", kwlist, &sid_in, &max_in_flight,
                                     &max_queue, &timeout, &heartbeat, &max_message_size,
                                     &zap))
        return -1;
    if (b->front != NULL || b->closed) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: a Broker is initialised once");
        return -1;
    }
    PyObject *sid = convert_identity(sid_in, "the service id");
    if (sid == NULL)
        return -1;
    if (sid == Py_None || PyBytes_GET_SIZE(sid) == 0 || PyBytes_GET_SIZE(sid) > 200
        || PyBytes_AS_STRING(sid)[0] == '\0') {
        Py_DECREF(sid);
        PyErr_SetString(PyExc_ValueError, "pseud: the broker's service id must be 1 to 200 "
                        "bytes not starting with a zero byte, as Server('svc') takes");
        return -1;
    }
    if (max_in_flight < 1 || max_queue < 0 || !(timeout > 0) || heartbeat < 0) {
        Py_DECREF(sid);
        PyErr_SetString(PyExc_ValueError, "pseud: Broker needs max_in_flight >= 1, "
                        "max_queue >= 0, timeout > 0 and heartbeat >= 0 (seconds; 0: off)");
        return -1;
    }
    b->service_id = sid;
    b->max_in_flight = max_in_flight;
    b->max_queue = max_queue;
    b->timeout = timeout;
    int hb_ms = (int)(heartbeat * 1000);
    char back_id[256];
    size_t sid_len = PyBytes_GET_SIZE(sid);
    memcpy(back_id, BROKER_ID_PREFIX, BROKER_ID_PREFIX_LEN);
    memcpy(back_id + BROKER_ID_PREFIX_LEN, PyBytes_AS_STRING(sid), sid_len);

    pseud_state *st = b->st;
    void *ctx = pseud_default_context(st, zap, &b->context);
    if (ctx == NULL)
        goto fail;
    b->front = zmq_socket(ctx, ZMQ_ROUTER);
    b->back = zmq_socket(ctx, ZMQ_ROUTER);
    b->mon = zmq_socket(ctx, ZMQ_PAIR);
    if (b->front == NULL || b->back == NULL || b->mon == NULL) {
        errors_raise_what(st, zmq_errno(), "creating the broker's sockets");
        goto fail;
    }
    if (set_router_options(st, b->front, PyBytes_AS_STRING(sid), sid_len,
                           max_message_size, hb_ms) < 0
        || set_router_options(st, b->back, back_id, BROKER_ID_PREFIX_LEN + sid_len,
                              max_message_size, hb_ms) < 0)
        goto fail;
    char mon_ep[64];
    static unsigned long long monitors;   /* names are never reused (unbinding is lazy) */
    snprintf(mon_ep, sizeof(mon_ep), "inproc://pseud.broker-monitor.%llu", ++monitors);
    int zero = 0;
    if (zmq_socket_monitor(b->back, mon_ep, ZMQ_EVENT_DISCONNECTED) != 0
        || zmq_setsockopt(b->mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_connect(b->mon, mon_ep) != 0) {
        errors_raise_what(st, zmq_errno(), "monitoring the broker's backend");
        goto fail;
    }
    if (fdwatch_init(&b->wf, st, b->front) < 0 || fdwatch_init(&b->wb, st, b->back) < 0
        || fdwatch_init(&b->wm, st, b->mon) < 0)
        goto fail;
    b->on_ready = PyCMethod_New(&on_ready_def, op, NULL, NULL);
    b->on_monitor = PyCMethod_New(&on_monitor_def, op, NULL, NULL);
    b->on_tick = PyCMethod_New(&on_tick_def, op, NULL, NULL);
    b->users = PyDict_New();
    if (b->on_ready == NULL || b->on_monitor == NULL || b->on_tick == NULL || b->users == NULL)
        goto fail;
    return 0;
fail:
    broker_close(b);
    return -1;
}

static PyObject *
broker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    BrokerObject *b = (BrokerObject *)type->tp_alloc(type, 0);
    if (b == NULL)
        return NULL;
    b->st = st;
    b->module = PyType_GetModule(type);
    Py_XINCREF(b->module);
    b->free_head = b->q_head = b->q_tail = NIL;
    b->last_log = -1e9;
    return (PyObject *)b;
}

static int
require_open(BrokerObject *b)
{
    if (b->front == NULL) {
        PyErr_SetString(PyExc_RuntimeError, b->closed ? "pseud: this broker is stopped"
                        : "pseud: Broker.__init__ was not called");
        return -1;
    }
    return 0;
}

static PyObject *
bind_one(BrokerObject *b, void *sock, PyObject *endpoint)
{
    if (require_open(b) < 0)
        return NULL;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL)
        return NULL;
    if (zmq_bind(sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(b->st, zmq_errno(), "cannot bind %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    Py_DECREF(ep);
    if (b->running)
        broker_after_io(b);
    return convert_last_endpoint(b->st, sock);
}

static PyObject *
broker_bind_frontend(PyObject *op, PyObject *endpoint)
{
    return bind_one(B(op), B(op)->front, endpoint);
}

static PyObject *
broker_bind_backend(PyObject *op, PyObject *endpoint)
{
    return bind_one(B(op), B(op)->back, endpoint);
}

static PyObject *
broker_start(PyObject *op, PyObject *unused)
{
    (void)unused;
    BrokerObject *b = B(op);
    if (require_open(b) < 0)
        return NULL;
    if (b->running)
        Py_RETURN_NONE;
    if (green_ensure(b->st) < 0)
        return NULL;
    if (b->tick == NULL && (b->tick = green_timer_repeat_new(b->st, TICK)) == NULL)
        return NULL;
    if (fdwatch_start(&b->wf, b->on_ready) < 0 || fdwatch_start(&b->wb, b->on_ready) < 0
        || fdwatch_start(&b->wm, b->on_monitor) < 0
        || green_watcher_start(b->tick, b->on_tick, NULL) < 0) {
        fdwatch_stop(&b->wf);
        fdwatch_stop(&b->wb);
        fdwatch_stop(&b->wm);
        return NULL;
    }
    b->running = 1;
    /* whatever arrived before: the edges may be gone */
    if (green_run_callback(b->st, b->on_ready, Py_None) < 0
        || green_run_callback(b->st, b->on_monitor, Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
broker_stop(PyObject *op, PyObject *unused)
{
    (void)unused;
    broker_close(B(op));
    Py_RETURN_NONE;
}

static PyObject *
view(BrokerObject *b, void *sock, PyObject **cache)
{
    if (require_open(b) < 0)
        return NULL;
    if (*cache != NULL && socket_handle(*cache) == NULL)
        Py_CLEAR(*cache);
    if (*cache == NULL && (*cache = socket_wrap(b->st, sock, 0)) == NULL)
        return NULL;
    return Py_NewRef(*cache);
}

static PyObject *
get_frontend_socket(PyObject *op, void *closure)
{
    (void)closure;
    return view(B(op), B(op)->front, &B(op)->front_view);
}

static PyObject *
get_backend_socket(PyObject *op, void *closure)
{
    (void)closure;
    return view(B(op), B(op)->back, &B(op)->back_view);
}

static PyObject *
get_secured(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(B(op)->secured);
}

static int
set_secured(PyObject *op, PyObject *value, void *closure)
{
    (void)closure;
    int v = value ? PyObject_IsTrue(value) : 0;
    if (v < 0)
        return -1;
    B(op)->secured = v;
    return 0;
}

static PyObject *
broker_stats(PyObject *op, PyObject *unused)
{
    (void)unused;
    BrokerObject *b = B(op);
    PyObject *workers = PyDict_New();
    if (workers == NULL)
        return NULL;
    for (int w = 0; w < b->nworkers; w++) {
        bworker *wk = &b->workers[w];
        if (wk->rid == NULL)
            continue;
        PyObject *key = PyBytes_FromStringAndSize(wk->rid, wk->rid_len);
        PyObject *val = Py_BuildValue("{s:i,s:L}", "in_flight", wk->inflight, "served", wk->served);
        if (key == NULL || val == NULL || PyDict_SetItem(workers, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(workers);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    return Py_BuildValue("{s:N,s:n,s:n,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L}",
                         "workers", workers, "queued", b->q_len, "in_flight", b->in_flight,
                         "routed", b->routed, "replied", b->replied, "rejected", b->rejected,
                         "expired", b->expired, "lost", b->lost, "bad_frontend", b->bad_front,
                         "bad_backend", b->bad_back, "anonymous", b->anonymous,
                         "to_clients", b->to_clients, "joined", b->joined);
}

static int
broker_traverse(PyObject *op, visitproc visit, void *arg)
{
    BrokerObject *b = B(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(b->module);
    Py_VISIT(b->front_view);
    Py_VISIT(b->back_view);
    Py_VISIT(b->on_ready);
    Py_VISIT(b->on_monitor);
    Py_VISIT(b->on_tick);
    Py_VISIT(b->tick);
    Py_VISIT(b->users);
    fdwatch_traverse(&b->wf, visit, arg);
    fdwatch_traverse(&b->wb, visit, arg);
    fdwatch_traverse(&b->wm, visit, arg);
    return 0;
}

static int
broker_clear(PyObject *op)
{
    BrokerObject *b = B(op);
    broker_close(b);
    Py_CLEAR(b->front_view);
    Py_CLEAR(b->back_view);
    Py_CLEAR(b->on_ready);
    Py_CLEAR(b->on_monitor);
    Py_CLEAR(b->on_tick);
    Py_CLEAR(b->users);
    fdwatch_clear(&b->wf);
    fdwatch_clear(&b->wb);
    fdwatch_clear(&b->wm);
    return 0;
}

static void
broker_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    broker_clear(op);
    Py_CLEAR(B(op)->service_id);
    Py_CLEAR(B(op)->module);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef broker_methods[] = {
    {"bind_frontend", broker_bind_frontend, METH_O,
     "bind_frontend($self, endpoint, /)\n--\n\nBind where clients connect; return the endpoint bound."},
    {"bind_backend", broker_bind_backend, METH_O,
     "bind_backend($self, endpoint, /)\n--\n\nBind where workers connect; return the endpoint bound."},
    {"start", broker_start, METH_NOARGS, "start($self, /)\n--\n\nRoute from the gevent hub."},
    {"stop", broker_stop, METH_NOARGS, "stop($self, /)\n--\n\nClose both sockets, forget every call."},
    {"stats", broker_stats, METH_NOARGS, "stats($self, /)\n--\n\nCounters and the live workers."},
    {NULL},
};

static PyGetSetDef broker_getset[] = {
    {"frontend_socket", get_frontend_socket, NULL, "Socket view of the frontend (plugins).", NULL},
    {"backend_socket", get_backend_socket, NULL, "Socket view of the backend.", NULL},
    {"secured", get_secured, set_secured,
     "True: frontend messages without a ZAP user id are dropped.", NULL},
    {NULL},
};

static PyType_Slot broker_slots[] = {
    {Py_tp_doc, "Broker core: see pseud.Broker."},
    {Py_tp_new, broker_new},
    {Py_tp_init, broker_init},
    {Py_tp_traverse, broker_traverse},
    {Py_tp_clear, broker_clear},
    {Py_tp_dealloc, broker_dealloc},
    {Py_tp_methods, broker_methods},
    {Py_tp_getset, broker_getset},
    {0, NULL},
};

static PyType_Spec broker_spec = {
    .name = "pseud._pseud.Broker",
    .basicsize = sizeof(BrokerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = broker_slots,
};

int
broker_init_module(PyObject *module)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &broker_spec, NULL);
    if (tp == NULL)
        return -1;
    int rc = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return rc;
}
