/* Outgoing calls of an RPC: send_work and the proxies that call it, the
 * call table (pending calls by uuid, and in deadline order), the deadline
 * timer, replies to our calls, and failing every call on stop().
 *
 * A pending call is a PendingCall: the Future the caller gets, extended
 * with the call table's record (deadline, deadline-list links, uuid,
 * peer). The record lives in the future's own allocation rather than in
 * a table entry of its own: a call then costs one allocation, and its
 * record can neither outlive nor be separated from its future. Only this
 * file knows the record; future.c knows a plain Future.
 *
 * Every call of an RPC has the same timeout, so send order is deadline
 * order: calls are appended to an intrusive list and one timer armed at
 * the head's deadline is enough. */
#include "rpc.h"
#include "rpc_object.h"
#include "errors.h"
#include "log_limit.h"
#include "green.h"
#include "proxy.h"
#include "remote_error.h"
#include "codec.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------- pending calls */

struct PendingCall {
    FutureObject future;
    double deadline;            /* green_now() time the call fails at */
    PendingCall *dl_prev, *dl_next;     /* the RPC's deadline list */
    PyObject *key;              /* its uuid (the key in future_pool) */
    PyObject *peer;             /* routing id it went to: only that peer may reply */
    PyObject *name;             /* method name and user id called, for the timeout's */
    PyObject *target;           /* message (docs/guide/calls.rst, "Timeouts") */
    PyObject *rpc;              /* its RPC while in the call table, else NULL */
};

#define CALL(o) ((PendingCall *)(o))

static int
call_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(CALL(op)->key);
    Py_VISIT(CALL(op)->peer);
    Py_VISIT(CALL(op)->name);
    Py_VISIT(CALL(op)->target);
    Py_VISIT(CALL(op)->rpc);
    return Py_TYPE(op)->tp_base->tp_traverse(op, visit, arg);
}

static int
call_clear(PyObject *op)
{
    Py_CLEAR(CALL(op)->key);
    Py_CLEAR(CALL(op)->peer);
    Py_CLEAR(CALL(op)->name);
    Py_CLEAR(CALL(op)->target);
    Py_CLEAR(CALL(op)->rpc);
    return Py_TYPE(op)->tp_base->tp_clear(op);
}

/* The Future's dealloc frees the object (and drops the type). */
static void
call_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    Py_CLEAR(CALL(op)->key);
    Py_CLEAR(CALL(op)->peer);
    Py_CLEAR(CALL(op)->name);
    Py_CLEAR(CALL(op)->target);
    Py_CLEAR(CALL(op)->rpc);
    Py_TYPE(op)->tp_base->tp_dealloc(op);
}

static PyObject *pool_pop(RPCObject *self, PyObject *uuid);

/* future.set(...) / set_exception(...) by the caller: the Future's, then
 * the call leaves the table (upstream's future_pool lost it the same way),
 * so that its reply, if any, is a late one. */
static PyObject *
call_settle(PyObject *op, const char *method, PyObject *args, PyObject *kwargs)
{
    PyObject *base = PyObject_GetAttrString((PyObject *)Py_TYPE(op)->tp_base, method);
    if (base == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (full == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, Py_NewRef(op));
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *res = PyObject_Call(base, full, kwargs);
    Py_DECREF(full);
    Py_DECREF(base);
    PendingCall *c = CALL(op);
    if (res != NULL && c->rpc != NULL && !future_is_pending(op)) {
        PyObject *key = Py_NewRef(c->key);
        PyObject *popped = pool_pop(RPC(c->rpc), key);
        Py_DECREF(key);
        if (popped == NULL && PyErr_Occurred())
            Py_CLEAR(res);
        Py_XDECREF(popped);
    }
    return res;
}

static PyObject *
call_set(PyObject *op, PyObject *args, PyObject *kwargs)
{
    return call_settle(op, "set", args, kwargs);
}

static PyObject *
call_set_exception(PyObject *op, PyObject *args, PyObject *kwargs)
{
    return call_settle(op, "set_exception", args, kwargs);
}

static PyMethodDef call_methods[] = {
    {"set", (PyCFunction)(void (*)(void))call_set, METH_VARARGS | METH_KEYWORDS,
     "set(value=None): resolve the call yourself; it leaves future_pool."},
    {"set_exception", (PyCFunction)(void (*)(void))call_set_exception,
     METH_VARARGS | METH_KEYWORDS,
     "set_exception(exception, exc_info=None): fail the call yourself; it leaves "
     "future_pool."},
    {NULL},
};

static PyType_Slot call_slots[] = {
    {Py_tp_doc, "The Future of a call sent by a Server or Client."},
    {Py_tp_methods, call_methods},
    {Py_tp_traverse, call_traverse},
    {Py_tp_clear, call_clear},
    {Py_tp_dealloc, call_dealloc},
    {0, NULL},
};

static PyType_Spec call_spec = {
    .name = "pseud._pseud.PendingCall",
    .basicsize = sizeof(PendingCall),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = call_slots,
};

int
rpc_calls_init_module(PyObject *module, pseud_state *st)
{
    st->PendingCall_Type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &call_spec, (PyObject *)st->Future_Type);
    return st->PendingCall_Type == NULL ? -1 : 0;
}

/* ------------------------------------------------------------ deadlines */

static void
deadline_unlink(RPCObject *self, PendingCall *c)
{
    if (c->dl_prev == NULL && self->dl_head != c)
        return;   /* not on the list */
    if (c->dl_prev != NULL)
        c->dl_prev->dl_next = c->dl_next;
    else
        self->dl_head = c->dl_next;
    if (c->dl_next != NULL)
        c->dl_next->dl_prev = c->dl_prev;
    else
        self->dl_tail = c->dl_prev;
    c->dl_prev = c->dl_next = NULL;
}

static void
deadline_append(RPCObject *self, PendingCall *c)
{
    c->dl_prev = self->dl_tail;
    c->dl_next = NULL;
    if (self->dl_tail != NULL)
        self->dl_tail->dl_next = c;
    else
        self->dl_head = c;
    self->dl_tail = c;
}

static int
arm_deadline_timer(RPCObject *self)
{
    if (self->deadline_timer != NULL || self->dl_head == NULL)
        return 0;
    double after = self->dl_head->deadline - green_now();
    self->deadline_timer = green_timer(self->st, after > 0 ? after : 0, self->on_deadline, NULL);
    return self->deadline_timer == NULL ? -1 : 0;
}

/* Take the pending call `uuid` out of the pool and the deadline list;
 * returns it (new ref) or NULL without an exception if unknown. */
static PyObject *
pool_remove(RPCObject *self, PyObject *uuid, PyObject *call)
{
    Py_INCREF(call);
    deadline_unlink(self, CALL(call));
    Py_CLEAR(CALL(call)->rpc);
    if (PyDict_DelItem(self->future_pool, uuid) < 0) {
        Py_DECREF(call);
        return NULL;
    }
    return call;
}

static PyObject *
pool_pop(RPCObject *self, PyObject *uuid)
{
    PyObject *call = PyDict_GetItemWithError(self->future_pool, uuid);
    return call == NULL ? NULL : pool_remove(self, uuid, call);
}

/* What a call that got no reply in time fails with: names the method,
 * the peer and the timeout. */
static PyObject *
call_timeout(RPCObject *self, PendingCall *c)
{
    PyObject *seconds = PyFloat_FromDouble(self->timeout);
    PyObject *msg = seconds == NULL ? NULL
        : PyUnicode_FromFormat("no reply to %R from %R within %R s", c->name, c->target,
                               seconds);
    Py_XDECREF(seconds);
    if (msg == NULL)
        return NULL;
    PyObject *exc = green_call_timeout_exc(self->st, self->timeout, msg);
    Py_DECREF(msg);
    return exc;
}

/* Timer: fail every call whose deadline has passed (gevent.Timeout). */
PyObject *
rpc_on_deadline(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = RPC(op);
    green_watcher_close(self->deadline_timer);
    Py_CLEAR(self->deadline_timer);
    double now = green_now() + 0.0005;  /* timers may fire a hair early */
    while (self->dl_head != NULL && self->dl_head->deadline <= now) {
        PendingCall *c = self->dl_head;
        PyObject *key = Py_NewRef(c->key);
        PyObject *fut = pool_pop(self, key);
        Py_DECREF(key);
        if (fut == NULL) {
            PyErr_Clear();
            deadline_unlink(self, c);   /* defensive: not in the pool */
            continue;
        }
        PyObject *exc = call_timeout(self, CALL(fut));
        int rc = exc == NULL ? -1 : future_set_exception(fut, exc);
        Py_XDECREF(exc);
        Py_DECREF(fut);
        if (rc < 0) {
            pseud_log(self->st, "error", "pseud: could not fail a call that timed out");
            PyErr_Clear();
        }
    }
    /* later calls must still time out, whatever happened above */
    if (arm_deadline_timer(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

void
rpc_fail_all_calls(RPCObject *self)
{
    green_watcher_close(self->deadline_timer);
    Py_CLEAR(self->deadline_timer);
    while (self->dl_head != NULL)
        deadline_unlink(self, self->dl_head);
    if (self->future_pool == NULL || PyDict_GET_SIZE(self->future_pool) == 0)
        return;
    PyObject *pending = PyDict_Values(self->future_pool);
    PyDict_Clear(self->future_pool);
    if (pending == NULL) {
        PyErr_Clear();
        return;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++)
        Py_CLEAR(CALL(PyList_GET_ITEM(pending, i))->rpc);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++) {
        PyObject *exc = PyObject_CallFunction(PyExc_ConnectionAbortedError, "s",
                                              "pseud: the RPC was stopped before the reply came");
        if (exc == NULL || future_set_exception(PyList_GET_ITEM(pending, i), exc) < 0)
            PyErr_Clear();
        Py_XDECREF(exc);
    }
    Py_DECREF(pending);
}

void
rpc_fail_calls_to(RPCObject *self, PyObject *routing, PyObject *why)
{
    if (self->future_pool == NULL || PyDict_GET_SIZE(self->future_pool) == 0)
        return;
    PyObject *saved = errors_save();
    /* a call still in the outbox never left: it waits for the peer to
     * come back, as calls made before it first came do */
    PyObject *queued = rpc_outbox_calls_of(self, routing);
    PyObject *doomed = PyList_New(0);
    if (queued == NULL || doomed == NULL)
        goto done;
    Py_ssize_t pos = 0;
    PyObject *uuid, *call;
    while (PyDict_Next(self->future_pool, &pos, &uuid, &call)) {
        PyObject *peer = CALL(call)->peer;
        if (PyBytes_GET_SIZE(peer) != PyBytes_GET_SIZE(routing)
            || memcmp(PyBytes_AS_STRING(peer), PyBytes_AS_STRING(routing),
                      PyBytes_GET_SIZE(peer)) != 0)
            continue;
        PyObject *key = PyLong_FromVoidPtr(call);
        int waiting = key == NULL ? -1 : PySet_Contains(queued, key);
        Py_XDECREF(key);
        if (waiting < 0 || (!waiting && PyList_Append(doomed, uuid) < 0))
            goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(doomed); i++) {
        PyObject *fut = pool_pop(self, PyList_GET_ITEM(doomed, i));
        if (fut == NULL)
            continue;
        PyObject *exc = PyObject_CallOneArg(self->st->PeerGoneError, why);
        if (exc == NULL || future_set_exception(fut, exc) < 0)
            PyErr_Clear();
        Py_XDECREF(exc);
        Py_DECREF(fut);
    }
done:
    if (PyErr_Occurred()) {
        pseud_log(self->st, "error", "pseud: could not fail the calls to a lost peer");
        PyErr_Clear();
    }
    Py_XDECREF(queued);
    Py_XDECREF(doomed);
    errors_restore(saved);
}

int
rpc_calls_traverse(RPCObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->future_pool);
    Py_VISIT(self->deadline_timer);
    Py_VISIT(self->on_deadline);
    return 0;
}

void
rpc_calls_clear(RPCObject *self)
{
    /* the list links calls the pool owns: unlink before letting go */
    while (self->dl_head != NULL)
        deadline_unlink(self, self->dl_head);
    Py_CLEAR(self->future_pool);
    Py_CLEAR(self->deadline_timer);
    Py_CLEAR(self->on_deadline);
}

/* ------------------------------------------------------------ sending */

/* A new message id. A worker's call goes to its broker and names the
 * client it is for after the 16 bytes (docs/guide/scaling.rst). */
static PyObject *
next_uuid(RPCObject *self, PyObject *broker_target)
{
    unsigned char raw[WIRE_MAX_UUID];
    msgid_next(&self->msgids, raw);
    if (broker_target == NULL)
        return PyBytes_FromStringAndSize((const char *)raw, 16);
    Py_ssize_t n = PyBytes_GET_SIZE(broker_target);
    if (n == 0 || n > WIRE_MAX_UUID - 16) {
        PyErr_Format(PyExc_ValueError, "pseud: a worker reaches clients through its broker "
                     "by user ids of 1 to %d bytes, not %R", WIRE_MAX_UUID - 16, broker_target);
        return NULL;
    }
    memcpy(raw + 16, PyBytes_AS_STRING(broker_target), n);
    return PyBytes_FromStringAndSize((const char *)raw, 16 + n);
}

/* Where work for `user_id` goes: the auth backend may map a user id to a
 * routing id (servers calling clients); noop keeps it as it is. */
static PyObject *
routing_id_for(RPCObject *self, PyObject *user_id)
{
    if (self->auth_noop)
        return Py_NewRef(user_id);
    PyObject *rid = PyObject_CallMethod(self->auth_backend, "get_routing_id", "O", user_id);
    if (rid == NULL)
        return NULL;
    PyObject *res = convert_identity(rid, "the routing id from get_routing_id()");
    Py_DECREF(rid);
    if (res == Py_None) {
        Py_DECREF(res);
        return Py_NewRef(user_id);
    }
    return res;
}

PyObject *
rpc_send_work(PyObject *op, PyObject *peer_in, PyObject *name, PyObject *args, PyObject *kwargs)
{
    RPCObject *self = RPC(op);
    if (rpc_require_socket(self) < 0)
        return NULL;
    if (self->state != RPC_RUNNING && rpc_start_reader(self) < 0)
        return NULL;
    PyObject *peer = convert_identity(peer_in != NULL ? peer_in : self->peer_routing_id, "the peer id");
    if (peer == NULL)
        return NULL;
    if (peer == Py_None) {
        Py_DECREF(peer);
        PyErr_SetString(PyExc_ValueError,
                        "pseud: no peer to send to: give Client a peer_routing_id, "
                        "or use rpc.send_to(user_id)");
        return NULL;
    }
    PyObject *routing = self->broker_id != NULL ? Py_NewRef(self->broker_id)
                                                : routing_id_for(self, peer);
    if (routing == NULL) {
        Py_DECREF(peer);
        return NULL;
    }
    /* nothing reaches a client that left until it is back: say so now
     * (rpc_monitor.c) */
    if (rpc_monitor_check_gone(self, routing) < 0) {
        Py_DECREF(routing);
        Py_DECREF(peer);
        return NULL;
    }

    /* (name, args, kwargs) on the wire, kwargs {} when none, as upstream
     * sends; packed from its parts, no tuple or empty dict built per call
     * (pipelined echo, callgrind: client 19,037 -> 18,068 instructions) */
    PyObject *fut = NULL, *uuid = NULL, *frames = NULL;
    msgpack_sbuffer local;
    msgpack_sbuffer_init(&local);
    msgpack_sbuffer *body = rpc_pack_call(self, name, args, kwargs, &local);
    if (body == NULL)
        goto done;
    if (self->max_message_size > 0 && body->size > (size_t)self->max_message_size) {
        /* the peer's libzmq would drop the connection, and every call on
         * it: only this one fails */
        PyErr_Format(self->st->MessageTooLargeError,
                     "pseud: the call %R is %zu bytes, over max_message_size (%lld bytes): "
                     "not sent", name, body->size, self->max_message_size);
        goto done;
    }
    uuid = next_uuid(self, self->broker_id != NULL ? peer : NULL);
    if (uuid == NULL)
        goto done;
    fut = self->st->PendingCall_Type->tp_alloc(self->st->PendingCall_Type, 0);
    if (fut == NULL)
        goto done;
    PendingCall *c = CALL(fut);
    c->key = Py_NewRef(uuid);
    c->peer = Py_NewRef(routing);
    c->name = Py_NewRef(name);
    c->target = Py_NewRef(peer);
    c->deadline = green_now() + self->timeout;
    if (PyDict_SetItem(self->future_pool, uuid, fut) < 0)
        goto fail;
    c->rpc = Py_NewRef(op);
    deadline_append(self, c);
    const char *data = body->data;
    size_t size = body->size;
    if (!self->auth_noop) {
        /* the plugin is Python and may switch greenlets, and another call
         * may then reuse the shared buffer: send from the frames' copy */
        frames = Py_BuildValue("[OyyOyy#]", routing, "", PSEUD_VERSION, uuid,
                               PSEUD_WORK, body->data, (Py_ssize_t)body->size);
        if (frames == NULL)
            goto fail_pooled;
        PyObject *copy = PyList_GET_ITEM(frames, 5);
        data = PyBytes_AS_STRING(copy);
        size = PyBytes_GET_SIZE(copy);
        body = NULL;
        PyObject *res = PyObject_CallMethod(self->auth_backend, "save_last_work", "O", frames);
        if (res == NULL)
            goto fail_pooled;
        Py_DECREF(res);
    }
    /* A server that only binds has no peer on its way: one not connected
     * now is unknown, and the call fails at once (as upstream's, with
     * ROUTER_MANDATORY). A peer we connect() to may just not be up yet:
     * the call waits in the outbox for it (docs/guide/calls.rst). */
    int wait_unreachable = !(self->is_server && !self->has_connected);
    int sent = rpc_send_or_queue(self, routing, uuid, PSEUD_WORK[0], data, size,
                                 body, c->deadline, fut, wait_unreachable);
    if (sent < 0)
        goto fail_pooled;
    if (sent == 1) {
        PyObject *msg = PyUnicode_FromFormat(
            "pseud: no connected peer has user id %R (a client is reachable once "
            "connected; with a security plugin, once it has sent a message, or "
            "connected with probe_router=True)", peer);
        if (msg != NULL) {
            PyObject *exc = PyObject_CallFunction(self->st->ZMQError, "iO", EHOSTUNREACH, msg);
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            Py_DECREF(msg);
        }
        goto fail_pooled;
    }
    if (arm_deadline_timer(self) < 0)
        goto fail_pooled;
    goto done;
fail_pooled:
    /* take it back out; stop() or the deadline may have done so already */
    deadline_unlink(self, c);
    {
        PyObject *saved = errors_save();
        if (PyDict_DelItem(self->future_pool, uuid) < 0)
            PyErr_Clear();
        errors_restore(saved);
    }
fail:
    Py_CLEAR(fut);
done:
    msgpack_sbuffer_destroy(&local);
    Py_XDECREF(frames);
    Py_XDECREF(uuid);
    Py_DECREF(routing);
    Py_DECREF(peer);
    return fut;
}

/* ------------------------------------------------------------ replies */

/* A reply to no pending call: late (its call timed out, or its caller
 * ended it), or for a call we never made. Upstream printed it; it is
 * logged at DEBUG, with the remote error's class and message. */
static void
log_late_reply(RPCObject *self, PyObject *routing, PyObject *uuid, int is_error,
               const char *body, size_t body_len)
{
    if (!is_error) {
        pseud_log_limited(self->st, LOG_IGNORED, "pseud: OK from %R for call %R, which is "
                          "no longer waiting (timed out, or unknown)", routing, uuid);
        return;
    }
    PyObject *value = codec_unpack(self->packer, body, body_len);
    PyErr_Clear();
    if (value != NULL && PyTuple_Check(value) && PyTuple_GET_SIZE(value) == 3)
        pseud_log_limited(self->st, LOG_IGNORED, "pseud: ERROR from %R for call %R, which "
                          "is no longer waiting (timed out, or unknown): %S: %S", routing,
                          uuid, PyTuple_GET_ITEM(value, 0), PyTuple_GET_ITEM(value, 1));
    else
        pseud_log_limited(self->st, LOG_IGNORED, "pseud: ERROR from %R for call %R, which "
                          "is no longer waiting (timed out, or unknown)", routing, uuid);
    Py_XDECREF(value);
}

void
rpc_handle_reply(RPCObject *self, PyObject *routing, PyObject *uuid, int is_error,
             const char *body, size_t body_len)
{
    /* message ids are guessable: a reply only counts from the peer the
     * call went to, or any peer could answer calls meant for another */
    PyObject *pending = PyDict_GetItemWithError(self->future_pool, uuid);
    PyObject *peer = pending != NULL ? CALL(pending)->peer : NULL;
    if (peer != NULL && (PyBytes_GET_SIZE(peer) != PyBytes_GET_SIZE(routing)
                         || memcmp(PyBytes_AS_STRING(peer), PyBytes_AS_STRING(routing),
                                   PyBytes_GET_SIZE(peer)) != 0)) {
        pseud_log_limited(self->st, LOG_STRAY_REPLY,
                          "pseud: reply from %R to a call sent to %R dropped", routing, peer);
        return;
    }
    /* the call found above, taken out without a second lookup */
    PyObject *fut = pending != NULL ? pool_remove(self, uuid, pending) : NULL;
    if (fut == NULL) {
        PyErr_Clear();
        log_late_reply(self, routing, uuid, is_error, body, body_len);
        return;
    }
    PyObject *value = codec_unpack(self->packer, body, body_len);
    int rc;
    if (value == NULL) {
        PyObject *why = errors_save();
        PyObject *exc = PyObject_CallFunction(PyExc_ValueError, "sO",
                                              "pseud: malformed reply body from the peer",
                                              why ? why : Py_None);
        Py_XDECREF(why);
        rc = exc == NULL ? -1 : future_set_exception(fut, exc);
        Py_XDECREF(exc);
    }
    else if (is_error) {
        PyObject *exc = remote_error_rebuild(self->st, value);
        rc = exc == NULL ? -1 : future_set_exception(fut, exc);
        Py_XDECREF(exc);
        Py_DECREF(value);
    }
    else {
        rc = future_set_result(fut, value);
        Py_DECREF(value);
    }
    if (rc < 0) {
        pseud_log(self->st, "error", "pseud: could not resolve a call");
        PyErr_Clear();
        /* never leave a caller hanging */
        PyObject *exc = PyObject_CallFunction(PyExc_Exception, "s", "pseud: bad reply");
        if (exc == NULL || future_set_exception(fut, exc) < 0)
            PyErr_Clear();
        Py_XDECREF(exc);
    }
    Py_DECREF(fut);
}


/* --------------------------------------------------- methods and proxies */


PyObject *
rpc_send_to(PyObject *op, PyObject *user_id)
{
    RPCObject *self = RPC(op);
    PyObject *peer = convert_identity(user_id, "send_to()'s user_id");
    if (peer == NULL)
        return NULL;
    if (peer == Py_None) {
        Py_DECREF(peer);
        PyErr_SetString(PyExc_TypeError, "pseud: send_to() needs a user id (str or bytes)");
        return NULL;
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *res = NULL;
    if (empty != NULL) {
        res = proxy_new(self->st, op, rpc_send_work, peer, empty);
        Py_DECREF(empty);
    }
    Py_DECREF(peer);
    return res;
}

PyObject *
rpc_send_work_method(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) < 2) {
        PyErr_SetString(PyExc_TypeError, "send_work(user_id, name, *args, **kwargs)");
        return NULL;
    }
    PyObject *name = PyTuple_GET_ITEM(args, 1);
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "pseud: send_work()'s name must be a str");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 2, PyTuple_GET_SIZE(args));
    if (rest == NULL)
        return NULL;
    PyObject *res = rpc_send_work(op, PyTuple_GET_ITEM(args, 0), name, rest, kwargs);
    Py_DECREF(rest);
    return res;
}

/* Unknown attributes become proxies: `client.hello` calls the remote 'hello'. */
PyObject *
rpc_getattro(PyObject *op, PyObject *name)
{
    PyObject *res;
#if PY_VERSION_HEX < 0x030d0000
    res = _PyObject_GenericGetAttrWithDict(op, name, NULL, 1);
    if (res != NULL || PyErr_Occurred())
        return res;
#else
    res = PyObject_GenericGetAttr(op, name);
    if (res != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return res;
    PyErr_Clear();
#endif
    RPCObject *self = RPC(op);
    if (!PyUnicode_Check(name)
        || (PyUnicode_GET_LENGTH(name) > 1 && PyUnicode_READ_CHAR(name, 0) == '_'
            && PyUnicode_READ_CHAR(name, 1) == '_')) {
        PyErr_Format(PyExc_AttributeError, "%.100s object has no attribute %R",
                     Py_TYPE(op)->tp_name, name);
        return NULL;
    }
    if (self->sock == NULL) {
        PyErr_Format(PyExc_RuntimeError, self->state == RPC_STOPPED
                     ? "pseud: this RPC is stopped; cannot call %R"
                     : "pseud: you must connect or bind first in order to call %R", name);
        return NULL;
    }
    return proxy_new(self->st, op, rpc_send_work, NULL, name);
}

