/* Incoming messages of an RPC: the reader greenlet, the plugin hooks
 * every message goes through, dispatch by message type, incoming calls
 * (looked up, handed to a worker, run, answered).
 *
 * The reader drains the ROUTER socket in batches of READ_BATCH messages
 * with ZMQ_DONTWAIT and parks (green_park) when nothing is left; the
 * socket's fdwatch (fdwatch.c) wakes it. Calls run in worker greenlets
 * (workers.c), which call rpc_run_work through the pool's C interface. */
#include "rpc_object.h"
#include "codec.h"
#include "errors.h"
#include "log_limit.h"
#include "green.h"
#include "registry.h"
#include "remote_error.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <zmq.h>

#define READ_BATCH 64               /* messages handled per wake-up before yielding */

/* ------------------------------------------------------------- replies */

/* Send an OK or ERROR reply carrying `value`; failures are logged, never
 * raised: the caller is a worker greenlet or the reader. */
static void
send_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type, PyObject *value)
{
    if (self->sock == NULL) {
        pseud_log_limited(self->st, LOG_REPLY_DROPPED, "pseud: reply dropped, the RPC is stopped");
        return;
    }
    msgpack_sbuffer local;
    msgpack_sbuffer_init(&local);
    msgpack_sbuffer *body = rpc_pack_body(self, value, &local);
    if (body == NULL && type == PSEUD_OK[0]) {
        /* the result cannot travel: tell the caller why instead */
        PyObject *err = remote_error_cannot_travel();
        if (err != NULL) {
            body = rpc_pack_body(self, err, &local);
            Py_DECREF(err);
        }
        type = PSEUD_ERROR[0];
    }
    if (body == NULL) {
        pseud_log(self->st, "error", "pseud: could not pack a reply");
        PyErr_Clear();
        goto done;
    }
    if (self->sock == NULL) {   /* stopped while a pack function ran */
        pseud_log_limited(self->st, LOG_REPLY_DROPPED, "pseud: reply dropped, the RPC is stopped");
        goto done;
    }
    if (self->max_message_size > 0 && body->size > (size_t)self->max_message_size) {
        /* never send what a peer with our limit would refuse: libzmq would
         * close its connection, and its other calls with it */
        PyObject *text = PyUnicode_FromFormat(
            "pseud: the reply is %zu bytes, over max_message_size (%lld bytes): not sent",
            body->size, self->max_message_size);
        pseud_log(self->st, "warning", "pseud: reply to %R is %zu bytes, over "
                  "max_message_size (%lld bytes): an error is sent instead",
                  routing, body->size, self->max_message_size);
        PyObject *err = text != NULL ? remote_error_refusal("MessageTooLargeError", text) : NULL;
        Py_XDECREF(text);
        local.size = 0;
        body = err != NULL ? rpc_pack_body(self, err, &local) : NULL;
        Py_XDECREF(err);
        type = PSEUD_ERROR[0];
        if (body == NULL) {
            PyErr_Clear();
            goto done;
        }
    }
    rpc_send_reply(self, routing, uuid, type, body);
done:
    msgpack_sbuffer_destroy(&local);
}

static void
reply_error(RPCObject *self, PyObject *routing, PyObject *uuid)
{
    PyObject *triple = remote_error_triple(self->st);
    if (triple != NULL) {
        send_reply(self, routing, uuid, PSEUD_ERROR[0], triple);
        Py_DECREF(triple);
    }
}

/* Reply ERROR(cls, message, '') for input we refuse; `message` is a str
 * (NULL: a generic one). */
static void
reply_refusal(RPCObject *self, PyObject *routing, PyObject *uuid, const char *cls,
              PyObject *message)
{
    PyObject *triple = message != NULL ? remote_error_refusal(cls, message) : NULL;
    if (triple != NULL) {
        send_reply(self, routing, uuid, PSEUD_ERROR[0], triple);
        Py_DECREF(triple);
    }
}

static void
reply_refusal_text(RPCObject *self, PyObject *routing, PyObject *uuid, const char *cls,
                   const char *text)
{
    PyObject *message = PyUnicode_FromString(text);
    if (message == NULL)
        PyErr_Clear();
    reply_refusal(self, routing, uuid, cls, message);
    Py_XDECREF(message);
}

/* --------------------------------------------------------- running calls */

/* Body of a worker greenlet: run one call, send its reply. */
int
rpc_run_work(void *rpc, const worker_job *job)
{
    RPCObject *self = rpc;
    PyObject *routing = job->routing, *uuid = job->uuid, *user_id = job->user_id;
    PyObject *callable = job->callable, *cargs = job->args, *ckwargs = job->kwargs;
    PyObject *func = rpccallable_func(callable);
    PyObject *result;
    if (rpccallable_with_identity(callable)) {
        Py_ssize_t n = PyTuple_GET_SIZE(cargs);
        PyObject *full = PyTuple_New(n + 1);
        if (full == NULL)
            return -1;
        PyTuple_SET_ITEM(full, 0, Py_NewRef(user_id));
        for (Py_ssize_t i = 0; i < n; i++)
            PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(cargs, i)));
        result = PyObject_Call(func, full, PyDict_GET_SIZE(ckwargs) ? ckwargs : NULL);
        Py_DECREF(full);
    }
    else {
        result = PyObject_Call(func, cargs, PyDict_GET_SIZE(ckwargs) ? ckwargs : NULL);
    }
    if (result == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            reply_error(self, routing, uuid);
            return 0;
        }
        /* GreenletExit, KeyboardInterrupt...: tell the caller, then let it
         * go on and end the worker */
        PyObject *exc = errors_save();
        errors_restore(Py_XNewRef(exc));
        reply_error(self, routing, uuid);
        errors_restore(exc);
        return -1;
    }
    send_reply(self, routing, uuid, PSEUD_OK[0], result);
    Py_DECREF(result);
    return 0;
}

PyObject *
rpc_worker_loop(PyObject *op, PyObject *unused)
{
    (void)unused;
    return workers_loop(RPC(op)->st, &RPC(op)->workers);
}

/* -------------------------------------------------------- incoming calls */


static PyObject *
lookup_callable(RPCObject *self, PyObject *name, PyObject *user_id)
{
    PyObject *pred_kwargs = NULL;
    if (!self->auth_noop) {
        pred_kwargs = PyObject_CallMethod(self->auth_backend, "get_predicate_arguments",
                                          "O", user_id);
        if (pred_kwargs == NULL)
            return NULL;
        if (!PyDict_Check(pred_kwargs)) {
            Py_DECREF(pred_kwargs);
            PyErr_SetString(PyExc_TypeError,
                            "pseud: get_predicate_arguments() must return a dict");
            return NULL;
        }
    }
    PyObject *callable = registry_lookup(self->st, self->registry, name, pred_kwargs);
    if (callable == NULL && self->proxy_to != Py_None
        && PyErr_ExceptionMatches(self->st->ServiceNotFoundError)
        && PyObject_TypeCheck(self->proxy_to, self->st->RPC_Type)) {
        PyErr_Clear();
        RPCObject *other = RPC(self->proxy_to);
        if (other->registry != NULL)
            callable = registry_lookup(self->st, other->registry, name, pred_kwargs);
        else
            PyErr_SetObject(self->st->ServiceNotFoundError, name);
    }
    Py_XDECREF(pred_kwargs);
    return callable;
}

static void
handle_work(RPCObject *self, PyObject *routing, PyObject *uuid, PyObject *user_id,
            const char *body, size_t body_len)
{
    PyObject *work = codec_unpack(self->packer, body, body_len);
    if (work == NULL) {
        PyObject *why = errors_save();
        PyObject *msg = why ? PyObject_Str(why) : NULL;
        PyErr_Clear();
        const char *text = msg ? PyUnicode_AsUTF8(msg) : NULL;
        PyErr_Clear();
        pseud_log_limited(self->st, LOG_BAD_WORK, "pseud: malformed WORK body from %R: %s",
                          routing, text ? text : "?");
        PyObject *full = PyUnicode_FromFormat("pseud: malformed WORK body: %s", text ? text : "?");
        if (full == NULL)
            reply_refusal_text(self, routing, uuid, "ValueError", "pseud: malformed WORK body");
        else
            reply_refusal(self, routing, uuid, "ValueError", full);
        PyErr_Clear();
        Py_XDECREF(full);
        Py_XDECREF(msg);
        Py_XDECREF(why);
        return;
    }
    PyObject *name, *args, *kwargs;
    if (!PyTuple_Check(work) || PyTuple_GET_SIZE(work) != 3
        || !PyUnicode_Check(name = PyTuple_GET_ITEM(work, 0))
        || !PyTuple_Check(args = PyTuple_GET_ITEM(work, 1))
        || !(PyDict_Check(kwargs = PyTuple_GET_ITEM(work, 2)) || kwargs == Py_None)) {
        pseud_log_limited(self->st, LOG_BAD_WORK,
                          "pseud: WORK body from %R is not (name, args, kwargs)", routing);
        reply_refusal_text(self, routing, uuid, "ValueError",
                           "pseud: WORK body must be (name: str, args: array, kwargs: map)");
        Py_DECREF(work);
        return;
    }
    PyObject *kw = kwargs == Py_None ? PyDict_New() : Py_NewRef(kwargs);
    if (kw == NULL) {
        PyErr_Clear();
        Py_DECREF(work);
        return;
    }
    /* keyword names must be str, or the call itself would be refused late */
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kw, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            reply_refusal_text(self, routing, uuid, "TypeError",
                               "pseud: keyword names must be str");
            Py_DECREF(kw);
            Py_DECREF(work);
            return;
        }
    }
    PyObject *callable = lookup_callable(self, name, user_id);
    if (callable == NULL) {
        if (PyErr_ExceptionMatches(self->st->ServiceNotFoundError)) {
            PyObject *triple = remote_error_not_found(self->module);
            if (triple != NULL) {
                send_reply(self, routing, uuid, PSEUD_ERROR[0], triple);
                Py_DECREF(triple);
            }
        }
        else {
            reply_error(self, routing, uuid);
        }
        Py_DECREF(kw);
        Py_DECREF(work);
        return;
    }
    worker_job job = {routing, uuid, user_id, callable, args, kw};
    if (workers_submit(self->st, &self->workers, &job) < 0) {
        pseud_log(self->st, "error", "pseud: could not hand the call to a worker");
        reply_error(self, routing, uuid);
    }
    Py_DECREF(callable);
    Py_DECREF(kw);
    Py_DECREF(work);
}


/* ---------------------------------------------------------- plugin hooks */

static PyObject *
call_plugin(PyObject *plugin, const char *method, const char *fmt, ...)
{
    PyObject *meth = PyObject_GetAttrString(plugin, method);
    if (meth == NULL)
        return NULL;
    va_list va;
    va_start(va, fmt);
    PyObject *args = Py_VaBuildValue(fmt, va);
    va_end(va);
    PyObject *res = NULL;
    if (args != NULL) {
        res = PyObject_CallObject(meth, args);
        Py_DECREF(args);
    }
    Py_DECREF(meth);
    return res;
}

/* Call a plugin method and drop its result. 0 / -1. */
#define CALL_HOOK(plugin, ...) \
    hook_result(call_plugin((plugin), __VA_ARGS__))

static int
hook_result(PyObject *r)
{
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The security plugin's handler of an authentication message; from a
 * peer not authenticated yet, any message is an attempt to authenticate.
 * 0 / -1. */
static int
auth_handle(RPCObject *self, char type, int peer_known, PyObject *user_id,
            PyObject *routing, PyObject *uuid, const wire_message *m)
{
    if (type == PSEUD_HELLO[0] || (peer_known && type == PSEUD_AUTHENTICATED[0])) {
        PyObject *body = PyBytes_FromStringAndSize(m->body, m->body_len);
        if (body == NULL)
            return -1;
        int rc = type == PSEUD_HELLO[0]
            ? CALL_HOOK(self->auth_backend, "handle_hello", "(OOOO)", user_id, routing, uuid, body)
            : CALL_HOOK(self->auth_backend, "handle_authenticated", "(O)", body);
        Py_DECREF(body);
        return rc;
    }
    return CALL_HOOK(self->auth_backend, "handle_authentication", "(OOO)",
                     user_id, routing, uuid);
}

/* Every hook a message goes through before dispatch, in the order
 * docs/guide/plugins.rst gives: is_authenticated (else the security
 * plugin takes the message), register_routing_id, handle_heartbeat.
 * Plugins flagged noop are never called. 1: dispatch the message, 0: the
 * plugin took it, -1: error. */
static int
plugin_hooks(RPCObject *self, const wire_message *m, PyObject *user_id, PyObject *routing,
             PyObject *uuid)
{
    if (!self->auth_noop) {
        PyObject *r = call_plugin(self->auth_backend, "is_authenticated", "(O)", user_id);
        if (r == NULL)
            return -1;
        int ok = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (ok < 0)
            return -1;
        if (!ok)
            return auth_handle(self, m->type, 0, user_id, routing, uuid, m) < 0 ? -1 : 0;
        /* only authenticated peers are remembered: a peer cycling keys or
         * logins must not grow the table */
        if (m->user_id != NULL
            && CALL_HOOK(self->auth_backend, "register_routing_id", "(OO)", user_id, routing) < 0)
            return -1;
    }
    if (self->heartbeat_hook
        && CALL_HOOK(self->heartbeat_backend, "handle_heartbeat", "(OO)", user_id, routing) < 0)
        return -1;
    return 1;
}

/* ------------------------------------------------------------- dispatch */

/* Handle one well-formed message: the plugin hooks, then by type. */
static void
handle_message(RPCObject *self, wire_message *m)
{
    PyObject *routing = PyBytes_FromStringAndSize(m->routing, m->routing_len);
    PyObject *uuid = PyBytes_FromStringAndSize(m->uuid, m->uuid_len);
    /* behind a broker the caller is the broker's client, named by the 7th frame */
    PyObject *user_id = m->has_caller ? PyBytes_FromStringAndSize(m->caller, m->caller_len)
                        : m->user_id != NULL ? PyBytes_FromString(m->user_id)
                        : PyBytes_FromStringAndSize(NULL, 0);
    if (routing == NULL || uuid == NULL || user_id == NULL)
        goto done;
    rpc_conn_seen(self, m->fd, m->routing, m->routing_len, m->user_id);
    if (plugin_hooks(self, m, user_id, routing, uuid) <= 0)
        goto done;
    char type = m->type;
    if (type == PSEUD_WORK[0]) {
        handle_work(self, routing, uuid, user_id, m->body, m->body_len);
    }
    else if (type == PSEUD_OK[0] || type == PSEUD_ERROR[0]) {
        rpc_handle_reply(self, routing, uuid, type == PSEUD_ERROR[0], m->body, m->body_len);
    }
    else if (type == PSEUD_HEARTBEAT[0]) {
        /* every message is a heartbeat: already counted by the hooks */
    }
    else if (type == PSEUD_HELLO[0] || type == PSEUD_AUTHENTICATED[0]
             || type == PSEUD_UNAUTHORIZED[0]) {
        if (!self->auth_noop)
            auth_handle(self, type, 1, user_id, routing, uuid, m);
        else
            pseud_log_limited(self->st, LOG_IGNORED,
                              "pseud: authentication message ignored (no security plugin)");
    }
    else {
        pseud_log_limited(self->st, LOG_UNKNOWN_TYPE, "pseud: unknown message type 0x%02x from %R",
                          (unsigned char)type, routing);
        reply_refusal_text(self, routing, uuid, "ValueError", "pseud: unknown message type");
    }
done:
    if (PyErr_Occurred()) {
        PyObject *exc = errors_save();
        pseud_log_limited(self->st, LOG_HANDLER_ERROR, "pseud: error while handling a message: %R",
                          exc ? exc : Py_None);
        Py_XDECREF(exc);
    }
    Py_XDECREF(routing);
    Py_XDECREF(uuid);
    Py_XDECREF(user_id);
}

/* A probe, [routing id, ''] (a client with probe_router=True, or an
 * upstream 1.x client, on connect): nothing to answer, but a security
 * plugin learns where an authenticated user is, so that send_to() reaches
 * it before its first call (docs/guide/calls.rst). */
static void
handle_probe(RPCObject *self, const wire_message *m)
{
    if (self->auth_noop || m->user_id == NULL)
        return;
    PyObject *routing = PyBytes_FromStringAndSize(m->routing, m->routing_len);
    PyObject *user_id = PyBytes_FromString(m->user_id);
    PyObject *ok = routing != NULL && user_id != NULL
        ? call_plugin(self->auth_backend, "is_authenticated", "(O)", user_id) : NULL;
    int yes = ok != NULL ? PyObject_IsTrue(ok) : -1;
    if (yes > 0)
        CALL_HOOK(self->auth_backend, "register_routing_id", "(OO)", user_id, routing);
    if (PyErr_Occurred()) {
        PyObject *exc = errors_save();
        pseud_log(self->st, "error", "pseud: error while handling a probe: %R",
                  exc ? exc : Py_None);
        Py_XDECREF(exc);
    }
    Py_XDECREF(ok);
    Py_XDECREF(routing);
    Py_XDECREF(user_id);
}

/* ------------------------------------------------------------- the reader */

/* Receive and handle up to READ_BATCH messages; returns how many. Stops
 * early when nothing is waiting (then sets *empty, if given) or the
 * socket failed (then stops the RPC). */
static int
drain_batch(RPCObject *self, int *empty)
{
    wire_message m;
    int handled = 0;
    while (handled < READ_BATCH && self->sock != NULL) {
        int rc = self->broker_id != NULL ? wire_recv_worker(self->sock, &m)
                                         : wire_recv(self->sock, &m);
        if (rc == WIRE_NOTHING) {
            if (empty != NULL)
                *empty = 1;
            break;
        }
        if (rc == WIRE_FAILED) {
            int err = zmq_errno();
            wire_release(&m);
            if (err == ETERM || err == ENOTSOCK) {
                /* the socket is gone under us: nothing more can come */
                pseud_log(self->st, "error", "pseud: the socket failed: %s; stopping",
                          zmq_strerror(err));
                rpc_stop_now(self);
                break;
            }
            pseud_log(self->st, "error", "pseud: receive failed: %s", zmq_strerror(err));
            break;
        }
        handled++;
        if (rc == WIRE_MESSAGE)
            handle_message(self, &m);
        else if (rc == WIRE_MALFORMED)
            pseud_log_limited(self->st, LOG_MALFORMED, "pseud: dropped a malformed message: %s",
                              m.problem);
        else if (rc == WIRE_PROBE)
            handle_probe(self, &m);
        wire_release(&m);
    }
    return handled;
}

/* Whether the fd watch's callback may handle messages itself, in the hub,
 * instead of switching to the reader greenlet and back: only when nothing
 * on the way can block, i.e. no Python plugin hook is called and the
 * packer is the default one (no user unpack functions). A reply batch
 * then costs no greenlet switch and no Waiter (sequential echo, callgrind:
 * 43,000 -> 35,800 instructions per call on the client, 40,100 -> 32,700
 * on the server). Code that does run there (logging, the codec's
 * allowlisted constructors) must not block; a handler that tried would
 * get gevent's BlockingSwitchOutError, which logging reports. */
static int
reads_in_hub(RPCObject *self)
{
    return self->auth_noop && self->heartbeat_noop && self->packer == self->st->default_packer;
}


/* The fd watch's callback (from the hub): wake the parked reader when
 * input is waiting, or when the RPC stopped. */
GREEN_SWITCHES PyObject *
rpc_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RPCObject *self = RPC(op);
    int events = fdwatch_fired(&self->watch, args, nargs, ZMQ_POLLIN, NULL);
    if (self->reader_waiter == NULL)
        Py_RETURN_NONE;
    if (!(events & ZMQ_POLLIN) && self->state != RPC_STOPPED)
        Py_RETURN_NONE;
    if (self->state == RPC_RUNNING && reads_in_hub(self)) {
        /* the reader stays parked; handle the batch here. After a full
         * batch more may be waiting: fdwatch_after_io re-checks and queues
         * this callback again. A batch that ended on EAGAIN needs no
         * re-check: that receive processed libzmq's pending commands
         * before failing, so input arriving later raises a new edge
         * (-500 instructions per sequential call, callgrind). */
        /* The futures resolved and the workers woken by this batch are
         * switched to from here once it is handled, not through a loop
         * callback each (green_batch). Callgrind, 3000 vs 9000 calls, one
         * run: sequential echo client 33,979 -> 32,695 instructions a
         * call, server 31,044 -> 29,610; pipelined client 18,648 ->
         * 18,601, server 16,186 -> 15,984. The woken then run before the
         * loop's other io watchers, the socket monitor's included:
         * rpc_monitor.c's rule on the order of events and messages is
         * what makes that safe. */
        int empty = 0;
        green_batch wakes;
        Py_INCREF(self);        /* the woken may stop and drop the RPC */
        green_batch_open(&wakes);
        drain_batch(self, &empty);
        if (self->state == RPC_RUNNING && !empty)
            fdwatch_after_io(&self->watch, ZMQ_POLLIN);
        if (PyErr_Occurred()) {     /* a callback of the hub must not raise */
            PyObject *exc = errors_save();
            pseud_log(self->st, "error", "pseud: error while reading: %R", exc);
            Py_XDECREF(exc);
        }
        green_batch_flush(self->st, &wakes);
        Py_DECREF(self);
        Py_RETURN_NONE;
    }
    PyObject *w = self->reader_waiter;
    self->reader_waiter = NULL;
    int rc = green_waiter_switch(w, Py_None);
    Py_DECREF(w);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Park the reader until input arrives (or until the hub runs it again,
 * when `yield_only`). Returns 0, or -1 if the reader was thrown into. */
GREEN_SWITCHES static int
reader_wait(RPCObject *self, int yield_only)
{
    if (!yield_only && self->sock != NULL) {
        /* any libzmq call (bind, connect, a failed receive) may have taken
         * the fd's edge: never park while input is waiting */
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &len) == 0
            && (events & ZMQ_POLLIN))
            return 0;
    }
    PyObject *w = green_waiter(self->st);
    if (w == NULL)
        return -1;
    if (yield_only) {
        if (green_wake_later(self->st, w, Py_None) < 0) {
            Py_DECREF(w);
            return -1;
        }
    }
    else {
        self->reader_waiter = Py_NewRef(w);
    }
    int rc = green_park(self->st, w, NULL, -1.0);
    if (!yield_only && self->reader_waiter == w)
        Py_CLEAR(self->reader_waiter);
    Py_DECREF(w);
    return rc < 0 ? -1 : 0;
}

/* The reader greenlet: drain, dispatch, park; until stop(). */
GREEN_SWITCHES static PyObject *
read_loop(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = RPC(op);
    Py_INCREF(self);
    while (self->state == RPC_RUNNING) {
        int handled = drain_batch(self, NULL);
        if (self->state != RPC_RUNNING)
            break;
        if (reader_wait(self, handled == READ_BATCH) < 0) {
            if (PyErr_ExceptionMatches(PyExc_Exception)) {
                pseud_log(self->st, "error", "pseud: reader interrupted");
                PyErr_Clear();
                continue;
            }
            Py_DECREF(self);
            return NULL;   /* GreenletExit and friends end the reader */
        }
    }
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static PyMethodDef read_loop_def = {"_read_loop", read_loop, METH_NOARGS, NULL};

int
rpc_start_reader(RPCObject *self)
{
    if (self->state == RPC_RUNNING)
        return 0;
    if (rpc_require_socket(self) < 0)
        return -1;
    if (green_ensure(self->st) < 0)
        return -1;
    if (fdwatch_start(&self->watch, self->on_ready) < 0 || rpc_monitor_start(self) < 0)
        return -1;
    /* a bound builtin that only this spawn holds: Python code cannot
     * start a second reader */
    PyObject *loop = PyCFunction_NewEx(&read_loop_def, (PyObject *)self, NULL);
    if (loop == NULL)
        return -1;
    PyObject *noargs = PyTuple_New(0);
    int rc = noargs == NULL ? -1 : green_spawn(self->st, loop, noargs);
    Py_XDECREF(noargs);
    Py_DECREF(loop);
    if (rc < 0)
        return -1;
    self->state = RPC_RUNNING;
    return 0;
}

void
rpc_after_io(RPCObject *self)
{
    if (self->reader_waiter != NULL)
        fdwatch_after_io(&self->watch, ZMQ_POLLIN);
}

void
rpc_release_reader(RPCObject *self)
{
    if (self->reader_waiter == NULL)
        return;
    PyObject *w = self->reader_waiter;
    self->reader_waiter = NULL;
    if (green_wake_later(self->st, w, Py_None) < 0)
        PyErr_Clear();
    Py_DECREF(w);
}
