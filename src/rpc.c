/* RPC: the base type of Server and Client (SPEC sections 3, 5 and 8).
 *
 * One ROUTER socket per RPC. A reader greenlet drains it in batches and
 * dispatches each message; callers send with ZMQ_DONTWAIT from their own
 * greenlet. ZMQ_FD is edge-triggered: whoever sends or receives re-checks
 * ZMQ_EVENTS afterwards and wakes the parked reader if input is waiting,
 * or the wake-up would be lost.
 *
 * Pending calls live in `future_pool` (uuid -> Future) and, in send order,
 * on an intrusive deadline list threaded through the futures themselves:
 * every call of an RPC has the same timeout, so send order is deadline
 * order and one timer armed at the head is enough.
 *
 * Messages that cannot leave yet (the peer is not connected: EHOSTUNREACH;
 * its pipe is full: EAGAIN) wait in an outbox retried on a short timer
 * until their deadline: see rpc_send.c. The object's layout is in
 * rpc_object.h. */
#include "rpc.h"
#include "rpc_object.h"
#include "codec.h"
#include "convert.h"
#include "errors.h"
#include "future.h"
#include "green.h"
#include "proxy.h"
#include "registry.h"
#include "remote_error.h"
#include "socket.h"
#include "wire.h"
#include "workers.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <structmember.h>
#include <zmq.h>

#define READ_BATCH 64               /* messages handled per wake-up before yielding */
#define DEFAULT_MAX_MESSAGE_SIZE (64 * 1024 * 1024)


static PyObject *rpc_stop_impl(RPCObject *self);

/* ------------------------------------------------------------- deadlines */

static void
deadline_unlink(RPCObject *self, FutureObject *f)
{
    if (f->dl_prev == NULL && self->dl_head != f)
        return;   /* not on the list */
    if (f->dl_prev != NULL)
        f->dl_prev->dl_next = f->dl_next;
    else
        self->dl_head = f->dl_next;
    if (f->dl_next != NULL)
        f->dl_next->dl_prev = f->dl_prev;
    else
        self->dl_tail = f->dl_prev;
    f->dl_prev = f->dl_next = NULL;
}

static void
deadline_append(RPCObject *self, FutureObject *f)
{
    f->dl_prev = self->dl_tail;
    f->dl_next = NULL;
    if (self->dl_tail != NULL)
        self->dl_tail->dl_next = f;
    else
        self->dl_head = f;
    self->dl_tail = f;
}

static int
arm_deadline_timer(RPCObject *self)
{
    if (self->deadline_timer != NULL || self->dl_head == NULL)
        return 0;
    double after = self->dl_head->deadline - green_now();
    self->deadline_timer = green_timer(self->st, after > 0 ? after : 0, self->on_deadline, NULL);
    if (self->deadline_timer == NULL)
        return -1;
    self->deadline_timer_at = self->dl_head->deadline;
    return 0;
}

/* Take the pending call `uuid` out of the pool and the deadline list;
 * returns the future (new ref) or NULL without an exception if unknown. */
static PyObject *
pool_pop(RPCObject *self, PyObject *uuid)
{
    PyObject *fut = PyDict_GetItemWithError(self->future_pool, uuid);
    if (fut == NULL)
        return NULL;
    Py_INCREF(fut);
    deadline_unlink(self, (FutureObject *)fut);
    if (PyDict_DelItem(self->future_pool, uuid) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

/* Timer: fail every call whose deadline has passed with gevent.Timeout. */
static PyObject *
rpc_on_deadline(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = (RPCObject *)op;
    green_watcher_close(self->deadline_timer);
    Py_CLEAR(self->deadline_timer);
    double now = green_now() + 0.0005;  /* timers may fire a hair early */
    while (self->dl_head != NULL && self->dl_head->deadline <= now) {
        FutureObject *f = self->dl_head;
        PyObject *key = Py_NewRef(f->key);
        PyObject *fut = pool_pop(self, key);
        Py_DECREF(key);
        if (fut == NULL) {
            PyErr_Clear();
            deadline_unlink(self, f);   /* defensive: not in the pool */
            continue;
        }
        PyObject *exc = green_timeout_exc(self->st, self->timeout);
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

/* ----------------------------------------------------------- send_work */

static PyObject *
next_uuid(RPCObject *self)
{
    unsigned char raw[16];
    msgid_next(&self->msgids, raw);
    return PyBytes_FromStringAndSize((const char *)raw, 16);
}

static int start_reader(RPCObject *self);

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
    RPCObject *self = (RPCObject *)op;
    if (rpc_require_socket(self) < 0)
        return NULL;
    if (!self->started && start_reader(self) < 0)
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
    PyObject *routing = routing_id_for(self, peer);
    Py_DECREF(peer);
    if (routing == NULL)
        return NULL;

    /* (name, args, kwargs) on the wire, kwargs {} when none, as upstream sends */
    PyObject *kw = kwargs != NULL ? Py_NewRef(kwargs) : PyDict_New();
    PyObject *work = kw != NULL ? PyTuple_Pack(3, name, args, kw) : NULL;
    Py_XDECREF(kw);
    PyObject *fut = NULL, *uuid = NULL, *frames = NULL;
    msgpack_sbuffer local;
    msgpack_sbuffer_init(&local);
    if (work == NULL)
        goto done;
    msgpack_sbuffer *body = rpc_pack_body(self, work, &local);
    if (body == NULL)
        goto done;
    uuid = next_uuid(self);
    if (uuid == NULL)
        goto done;
    fut = future_new(self->st);
    if (fut == NULL)
        goto done;
    FutureObject *f = (FutureObject *)fut;
    f->key = Py_NewRef(uuid);
    f->peer = Py_NewRef(routing);
    f->deadline = green_now() + self->timeout;
    if (PyDict_SetItem(self->future_pool, uuid, fut) < 0)
        goto fail;
    deadline_append(self, f);
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
    if (rpc_send_or_queue(self, routing, uuid, PSEUD_WORK[0], data, size,
                      body, f->deadline, fut) < 0)
        goto fail_pooled;
    if (arm_deadline_timer(self) < 0)
        goto fail_pooled;
    goto done;
fail_pooled: {
        /* stop() or the deadline may already have taken it out */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        deadline_unlink(self, f);
        if (PyDict_DelItem(self->future_pool, uuid) < 0)
            PyErr_Clear();
        PyErr_Restore(et, ev, tb);
    }
fail:
    Py_CLEAR(fut);
done:
    msgpack_sbuffer_destroy(&local);
    Py_XDECREF(frames);
    Py_XDECREF(uuid);
    Py_XDECREF(work);
    Py_DECREF(routing);
    return fut;
}

/* ------------------------------------------------------------- replies */

/* Send an OK or ERROR reply carrying `value`; failures are logged, never
 * raised: the caller is a worker greenlet or the reader. */
static void
send_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type, PyObject *value)
{
    if (self->sock == NULL) {
        pseud_log(self->st, "warning", "pseud: reply dropped, the RPC is stopped");
        return;
    }
    msgpack_sbuffer local;
    msgpack_sbuffer_init(&local);
    msgpack_sbuffer *body = rpc_pack_body(self, value, &local);
    if (body == NULL && type == PSEUD_OK[0]) {
        /* the result cannot travel: tell the caller why instead */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        PyObject *msg = ev ? PyObject_Str(ev) : NULL;
        if (msg == NULL) {   /* the message is a str on the wire, whatever happens */
            PyErr_Clear();
            msg = PyUnicode_FromString("");
        }
        const char *cls = et ? ((PyTypeObject *)et)->tp_name : "TypeError";
        const char *dot = strrchr(cls, '.');
        PyObject *err = msg == NULL ? NULL
            : Py_BuildValue("(sOs)", dot ? dot + 1 : cls, msg, "");
        Py_XDECREF(msg);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
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
        pseud_log(self->st, "warning", "pseud: reply dropped, the RPC is stopped");
        goto done;
    }
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

/* Reply ERROR(cls, message, '') for input we refuse. */
static void
reply_refusal(RPCObject *self, PyObject *routing, PyObject *uuid, const char *cls,
              const char *message)
{
    PyObject *triple = Py_BuildValue("(sss)", cls, message, "");
    if (triple == NULL) {
        PyErr_Clear();
        return;
    }
    send_reply(self, routing, uuid, PSEUD_ERROR[0], triple);
    Py_DECREF(triple);
}

/* Body of a worker greenlet: run one call, send its reply. */
static PyObject *
rpc_run_work(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RPCObject *self = (RPCObject *)op;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "_run_work takes 6 arguments");
        return NULL;
    }
    PyObject *routing = args[0], *uuid = args[1], *user_id = args[2];
    PyObject *callable = args[3], *cargs = args[4], *ckwargs = args[5];
    PyObject *func = rpccallable_func(callable);
    PyObject *result;
    if (rpccallable_with_identity(callable)) {
        Py_ssize_t n = PyTuple_GET_SIZE(cargs);
        PyObject *full = PyTuple_New(n + 1);
        if (full == NULL)
            return NULL;
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
            Py_RETURN_NONE;
        }
        /* GreenletExit, KeyboardInterrupt...: tell the caller, then let it go on */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        Py_XINCREF(et);
        Py_XINCREF(ev);
        Py_XINCREF(tb);
        PyErr_Restore(et, ev, tb);
        reply_error(self, routing, uuid);
        PyErr_Restore(et, ev, tb);
        return NULL;
    }
    send_reply(self, routing, uuid, PSEUD_OK[0], result);
    Py_DECREF(result);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ dispatch */

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
        RPCObject *other = (RPCObject *)self->proxy_to;
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
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyObject *msg = ev ? PyObject_Str(ev) : NULL;
        PyErr_Clear();
        const char *text = msg ? PyUnicode_AsUTF8(msg) : NULL;
        PyErr_Clear();
        pseud_log(self->st, "warning", "pseud: malformed WORK body from %R: %s",
                  routing, text ? text : "?");
        PyObject *full = PyUnicode_FromFormat("pseud: malformed WORK body: %s", text ? text : "?");
        reply_refusal(self, routing, uuid, "ValueError",
                      full ? PyUnicode_AsUTF8(full) : "pseud: malformed WORK body");
        PyErr_Clear();
        Py_XDECREF(full);
        Py_XDECREF(msg);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return;
    }
    PyObject *name, *args, *kwargs;
    if (!PyTuple_Check(work) || PyTuple_GET_SIZE(work) != 3
        || !PyUnicode_Check(name = PyTuple_GET_ITEM(work, 0))
        || !PyTuple_Check(args = PyTuple_GET_ITEM(work, 1))
        || !(PyDict_Check(kwargs = PyTuple_GET_ITEM(work, 2)) || kwargs == Py_None)) {
        pseud_log(self->st, "warning", "pseud: WORK body from %R is not (name, args, kwargs)",
                  routing);
        reply_refusal(self, routing, uuid, "ValueError",
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
            reply_refusal(self, routing, uuid, "TypeError", "pseud: keyword names must be str");
            Py_DECREF(kw);
            Py_DECREF(work);
            return;
        }
    }
    PyObject *callable = lookup_callable(self, name, user_id);
    if (callable == NULL) {
        if (PyErr_ExceptionMatches(self->st->ServiceNotFoundError)) {
            PyErr_Clear();
            PyObject *triple = Py_BuildValue("(sOs)", "ServiceNotFoundError", name, "");
            if (triple != NULL) {
                send_reply(self, routing, uuid, PSEUD_ERROR[0], triple);
                Py_DECREF(triple);
            }
            PyErr_Clear();
        }
        else {
            reply_error(self, routing, uuid);
        }
        Py_DECREF(kw);
        Py_DECREF(work);
        return;
    }
    PyObject *job = PyTuple_Pack(6, routing, uuid, user_id, callable, args, kw);
    if (job == NULL || workers_submit(self->st, &self->workers, job) < 0) {
        pseud_log(self->st, "error", "pseud: could not hand the call to a worker");
        reply_error(self, routing, uuid);
    }
    Py_XDECREF(job);
    Py_DECREF(callable);
    Py_DECREF(kw);
    Py_DECREF(work);
}

static void
handle_reply(RPCObject *self, PyObject *routing, PyObject *uuid, int is_error,
             const char *body, size_t body_len)
{
    /* message ids are guessable: a reply only counts from the peer the
     * call went to, or any peer could answer calls meant for another */
    PyObject *pending = PyDict_GetItemWithError(self->future_pool, uuid);
    PyObject *peer = pending != NULL ? ((FutureObject *)pending)->peer : NULL;
    if (peer != NULL && (PyBytes_GET_SIZE(peer) != PyBytes_GET_SIZE(routing)
                         || memcmp(PyBytes_AS_STRING(peer), PyBytes_AS_STRING(routing),
                                   PyBytes_GET_SIZE(peer)) != 0)) {
        pseud_log(self->st, "warning", "pseud: reply from %R to a call sent to %R dropped",
                  routing, peer);
        return;
    }
    PyObject *fut = pool_pop(self, uuid);
    if (fut == NULL) {
        PyErr_Clear();
        pseud_log(self->st, "debug", "pseud: %s for unknown or expired call %R",
                  is_error ? "ERROR" : "OK", uuid);
        return;
    }
    PyObject *value = codec_unpack(self->packer, body, body_len);
    int rc;
    if (value == NULL) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        PyObject *exc = PyObject_CallFunction(PyExc_ValueError, "sO",
                                              "pseud: malformed reply body from the peer",
                                              ev ? ev : Py_None);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
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

/* Handle one checked message. Plugins are only called when not noop. */
static void
handle_message(RPCObject *self, pseud_frames *m)
{
    PyObject *routing = PyBytes_FromStringAndSize(m->routing, m->routing_len);
    PyObject *uuid = PyBytes_FromStringAndSize(m->uuid, m->uuid_len);
    PyObject *user_id = m->user_id != NULL ? PyBytes_FromString(m->user_id)
                                           : PyBytes_FromStringAndSize(NULL, 0);
    if (routing == NULL || uuid == NULL || user_id == NULL)
        goto done;
    char type = m->type;
    if (!self->auth_noop) {
        PyObject *r = call_plugin(self->auth_backend, "is_authenticated", "(O)", user_id);
        if (r == NULL)
            goto done;
        int ok = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (ok < 0)
            goto done;
        if (!ok) {
            PyObject *body = PyBytes_FromStringAndSize(m->body, m->body_len);
            if (body == NULL)
                goto done;
            r = type == PSEUD_HELLO[0]
                ? call_plugin(self->auth_backend, "handle_hello", "(OOOO)", user_id, routing, uuid, body)
                : call_plugin(self->auth_backend, "handle_authentication", "(OOO)", user_id, routing, uuid);
            Py_DECREF(body);
            Py_XDECREF(r);
            goto done;
        }
        /* only authenticated peers are remembered: a peer cycling keys or
         * logins must not grow the table */
        if (m->user_id != NULL) {
            r = call_plugin(self->auth_backend, "register_routing_id", "(OO)", user_id, routing);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    if (!self->heartbeat_noop) {
        PyObject *r = call_plugin(self->heartbeat_backend, "handle_heartbeat", "(OO)", user_id, routing);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    if (type == PSEUD_WORK[0]) {
        handle_work(self, routing, uuid, user_id, m->body, m->body_len);
    }
    else if (type == PSEUD_OK[0] || type == PSEUD_ERROR[0]) {
        handle_reply(self, routing, uuid, type == PSEUD_ERROR[0], m->body, m->body_len);
    }
    else if (type == PSEUD_HEARTBEAT[0]) {
        /* every message is a heartbeat: already counted above */
    }
    else if (type == PSEUD_HELLO[0] || type == PSEUD_AUTHENTICATED[0]
             || type == PSEUD_UNAUTHORIZED[0]) {
        if (!self->auth_noop) {
            PyObject *body = PyBytes_FromStringAndSize(m->body, m->body_len);
            PyObject *r = NULL;
            if (body != NULL) {
                if (type == PSEUD_HELLO[0])
                    r = call_plugin(self->auth_backend, "handle_hello", "(OOOO)", user_id, routing, uuid, body);
                else if (type == PSEUD_AUTHENTICATED[0])
                    r = call_plugin(self->auth_backend, "handle_authenticated", "(O)", body);
                else
                    r = call_plugin(self->auth_backend, "handle_authentication", "(OOO)", user_id, routing, uuid);
                Py_DECREF(body);
            }
            Py_XDECREF(r);
        }
        else {
            pseud_log(self->st, "debug", "pseud: authentication message ignored (no security plugin)");
        }
    }
    else {
        pseud_log(self->st, "warning", "pseud: unknown message type 0x%02x from %R",
                  (unsigned char)type, routing);
        reply_refusal(self, routing, uuid, "ValueError", "pseud: unknown message type");
    }
done:
    if (PyErr_Occurred()) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        pseud_log(self->st, "error", "pseud: error while handling a message: %R", ev ? ev : Py_None);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
    }
    Py_XDECREF(routing);
    Py_XDECREF(uuid);
    Py_XDECREF(user_id);
}

/* -------------------------------------------------------------- reader */

/* Hub callback (the fd watcher, or a wake-up queued by after_io). */
static PyObject *
rpc_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RPCObject *self = (RPCObject *)op;
    int events = fdwatch_fired(&self->watch, args, nargs, ZMQ_POLLIN, NULL);
    if (self->reader_waiter == NULL)
        Py_RETURN_NONE;
    if (!(events & ZMQ_POLLIN) && !self->stopped)
        Py_RETURN_NONE;
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
static int
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
static PyObject *
rpc_read_loop(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = (RPCObject *)op;
    Py_INCREF(self);
    pseud_frames m;
    while (!self->stopped && self->sock != NULL) {
        int handled = 0;
        while (handled < READ_BATCH && self->sock != NULL) {
            int rc = wire_recv(self->sock, &m);
            if (rc == WIRE_AGAIN)
                break;
            if (rc == WIRE_ERROR) {
                int err = zmq_errno();
                if (err == ETERM || err == ENOTSOCK) {
                    wire_release(&m);
                    self->stopped = 1;
                    break;
                }
                wire_release(&m);
                pseud_log(self->st, "error", "pseud: receive failed: %s", zmq_strerror(err));
                break;
            }
            handled++;
            if (rc == WIRE_OK)
                handle_message(self, &m);
            else if (rc == WIRE_BAD)
                pseud_log(self->st, "warning", "pseud: dropped a malformed message: %s",
                          m.problem);
            /* WIRE_PROBE: an upstream client saying hello on connect */
            wire_release(&m);
        }
        if (self->stopped || self->sock == NULL)
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

static int
start_reader(RPCObject *self)
{
    if (self->started)
        return 0;
    if (rpc_require_socket(self) < 0)
        return -1;
    if (green_ensure(self->st) < 0)
        return -1;
    if (fdwatch_start(&self->watch, self->on_ready) < 0)
        return -1;
    PyObject *loop = PyObject_GetAttrString((PyObject *)self, "_read_loop");
    if (loop == NULL)
        return -1;
    PyObject *noargs = PyTuple_New(0);
    int rc = noargs == NULL ? -1 : green_spawn(self->st, loop, noargs);
    Py_XDECREF(noargs);
    Py_DECREF(loop);
    if (rc < 0)
        return -1;
    self->started = 1;
    return 0;
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

static int
setup_socket(RPCObject *self)
{
    if (self->sock != NULL)
        return 0;
    if (self->stopped) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: this RPC is stopped; create a new one");
        return -1;
    }
    void *s = zmq_socket(self->st->zmq_ctx, ZMQ_ROUTER);
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
        || (self->is_server && self->user_id != Py_None
            && zmq_setsockopt(s, ZMQ_ROUTING_ID, PyBytes_AS_STRING(self->user_id),
                              PyBytes_GET_SIZE(self->user_id)) != 0)) {
        errors_raise_what(self->st, zmq_errno(), "configuring the socket");
        zmq_close(s);
        return -1;
    }
    if (fdwatch_init(&self->watch, self->st, s) < 0) {
        zmq_close(s);
        return -1;
    }
    self->sock = s;
    /* plugins configure the socket before the first bind/connect; if one
     * fails, no socket is left behind (a later bind must not serve a
     * server meant to be secured in plaintext) */
    if (!self->auth_noop && configure_plugin(self->auth_backend) < 0) {
        close_socket(self);
        return -1;
    }
    if (!self->heartbeat_noop && configure_plugin(self->heartbeat_backend) < 0) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        close_socket(self);
        stop_plugin(self, self->auth_backend, self->auth_noop);
        PyErr_Restore(et, ev, tb);
        return -1;
    }
    return 0;
}

static PyObject *
rpc_bind(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = (RPCObject *)op;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL || setup_socket(self) < 0) {
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

static PyObject *
rpc_connect(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = (RPCObject *)op;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL || setup_socket(self) < 0) {
        Py_XDECREF(ep);
        return NULL;
    }
    int one = 1;
    /* an upstream server learns our routing id before our first call */
    if (!self->is_server)
        zmq_setsockopt(self->sock, ZMQ_PROBE_ROUTER, &one, sizeof(one));
    if (zmq_connect(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot connect to %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    Py_DECREF(ep);
    Py_RETURN_NONE;
}

static PyObject *
rpc_disconnect(PyObject *op, PyObject *endpoint)
{
    RPCObject *self = (RPCObject *)op;
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
    Py_DECREF(ep);
    Py_RETURN_NONE;
}

static PyObject *
rpc_start(PyObject *op, PyObject *unused)
{
    (void)unused;
    if (start_reader((RPCObject *)op) < 0)
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
    /* the watchers must go before the fd they watch */
    fdwatch_close(&self->watch);
    if (self->sock != NULL) {
        zmq_close(self->sock);
        self->sock = NULL;
    }
}

static PyObject *
rpc_stop_impl(RPCObject *self)
{
    if (self->stopped && self->sock == NULL)
        Py_RETURN_NONE;
    self->stopped = 1;
    fdwatch_close(&self->watch);
    green_watcher_close(self->deadline_timer);
    Py_CLEAR(self->deadline_timer);
    green_watcher_close(self->retry_timer);
    Py_CLEAR(self->retry_timer);
    /* close first: once the security plugin has left the ZAP handler, no
     * handshake may still reach this socket */
    close_socket(self);
    stop_plugin(self, self->auth_backend, self->auth_noop);
    stop_plugin(self, self->heartbeat_backend, self->heartbeat_noop);
    if (self->outbox != NULL && PyList_SetSlice(self->outbox, 0, PY_SSIZE_T_MAX, NULL) < 0)
        PyErr_Clear();
    workers_close(self->st, &self->workers);
    /* the parked reader wakes, sees `stopped` and returns */
    if (self->reader_waiter != NULL) {
        PyObject *w = self->reader_waiter;
        self->reader_waiter = NULL;
        PyObject *sw = PyObject_GetAttrString(w, "switch");
        if (sw == NULL || green_run_callback(self->st, sw, Py_None) < 0)
            PyErr_Clear();
        Py_XDECREF(sw);
        Py_DECREF(w);
    }
    /* outstanding calls fail instead of hanging */
    while (self->dl_head != NULL)
        deadline_unlink(self, self->dl_head);
    if (self->future_pool != NULL && PyDict_GET_SIZE(self->future_pool) > 0) {
        PyObject *pending = PyDict_Values(self->future_pool);
        PyDict_Clear(self->future_pool);
        if (pending == NULL) {
            PyErr_Clear();
        }
        else {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++) {
                PyObject *exc = PyObject_CallFunction(
                    PyExc_ConnectionAbortedError, "s",
                    "pseud: the RPC was stopped before the reply came");
                if (exc == NULL || future_set_exception(PyList_GET_ITEM(pending, i), exc) < 0)
                    PyErr_Clear();
                Py_XDECREF(exc);
            }
            Py_DECREF(pending);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
rpc_stop(PyObject *op, PyObject *unused)
{
    (void)unused;
    return rpc_stop_impl((RPCObject *)op);
}

static PyObject *
rpc_send_to(PyObject *op, PyObject *user_id)
{
    RPCObject *self = (RPCObject *)op;
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

static PyObject *
rpc_send_work_meth(PyObject *op, PyObject *args, PyObject *kwargs)
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

/* send_message(frames): what plugins use to speak the protocol (HEARTBEAT,
 * HELLO, AUTHENTICATED...). A six-frame pseud message whose peer is not
 * reachable yet waits in the outbox like a call; anything else goes out
 * as it is or fails. */
static PyObject *
rpc_send_message(PyObject *op, PyObject *frames_in)
{
    RPCObject *self = (RPCObject *)op;
    if (rpc_require_socket(self) < 0)
        return NULL;
    PyObject *frames = PySequence_Fast(frames_in, "pseud: send_message() takes a list of frames");
    if (frames == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(frames);
    PyObject **items = PySequence_Fast_ITEMS(frames);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "pseud: frame %zd must be bytes, not %.100s",
                         i, Py_TYPE(items[i])->tp_name);
            Py_DECREF(frames);
            return NULL;
        }
    }
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
                    rpc_abandon_message(self->sock);
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

/* Unknown attributes become proxies: `client.hello` calls the remote 'hello'. */
static PyObject *
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
    RPCObject *self = (RPCObject *)op;
    if (!PyUnicode_Check(name)
        || (PyUnicode_GET_LENGTH(name) > 1 && PyUnicode_READ_CHAR(name, 0) == '_'
            && PyUnicode_READ_CHAR(name, 1) == '_')) {
        PyErr_Format(PyExc_AttributeError, "%.100s object has no attribute %R",
                     Py_TYPE(op)->tp_name, name);
        return NULL;
    }
    if (self->sock == NULL) {
        PyErr_Format(PyExc_RuntimeError, self->stopped
                     ? "pseud: this RPC is stopped; cannot call %R"
                     : "pseud: you must connect or bind first in order to call %R", name);
        return NULL;
    }
    return proxy_new(self->st, op, rpc_send_work, NULL, name);
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
    RPCObject *self = (RPCObject *)op;
    static char *kwlist[] = {"user_id", "peer_routing_id", "is_server", "timeout",
                             "registry", "packer", "proxy_to", "auth_backend",
                             "heartbeat_backend", "max_message_size", NULL};
    PyObject *user_id = Py_None, *peer = Py_None, *registry = Py_None, *packer = Py_None;
    PyObject *proxy_to = Py_None, *auth = Py_None, *hb = Py_None;
    int is_server = 0;
    double timeout = 5.0;
    long long max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOpdOOOOOL:RPC", kwlist, &user_id, &peer,
                                     &is_server, &timeout, &registry, &packer, &proxy_to,
                                     &auth, &hb, &max_message_size))
        return -1;
    if (!(timeout > 0) || !isfinite(timeout)) {
        PyErr_SetString(PyExc_ValueError,
                        "pseud: timeout must be a positive, finite number of seconds");
        return -1;
    }
    if (self->sock != NULL) {
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
    return 0;
}

static PyObject *
bound_builtin(PyObject *self, PyMethodDef *def)
{
    return PyCFunction_NewEx(def, self, NULL);
}

static PyMethodDef on_ready_def = {"_on_ready", (PyCFunction)(void (*)(void))rpc_on_ready, METH_FASTCALL, NULL};
static PyMethodDef on_deadline_def = {"_on_deadline", rpc_on_deadline, METH_NOARGS, NULL};
static PyMethodDef on_retry_def = {"_on_retry", rpc_on_retry, METH_NOARGS, NULL};
static PyMethodDef run_work_def = {"_run_work", (PyCFunction)(void (*)(void))rpc_run_work, METH_FASTCALL, NULL};

static PyObject *
rpc_worker_loop(PyObject *op, PyObject *unused)
{
    (void)unused;
    RPCObject *self = (RPCObject *)op;
    return workers_loop(self->st, &self->workers);
}

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
    self->watch.fd = -1;
    self->timeout = 5.0;
    self->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    self->auth_noop = self->heartbeat_noop = 1;
    self->user_id = Py_NewRef(Py_None);
    self->peer_routing_id = Py_NewRef(Py_None);
    self->registry = Py_NewRef(st->global_registry);
    self->packer = Py_NewRef(st->default_packer);
    self->proxy_to = Py_NewRef(Py_None);
    self->last_endpoint = Py_NewRef(Py_None);
    self->retry_interval = RETRY_FIRST;
    msgpack_sbuffer_init(&self->sbuf);
    msgid_init(&self->msgids);
    self->future_pool = PyDict_New();
    self->outbox = PyList_New(0);
    self->on_ready = bound_builtin((PyObject *)self, &on_ready_def);
    self->on_deadline = bound_builtin((PyObject *)self, &on_deadline_def);
    self->on_retry = bound_builtin((PyObject *)self, &on_retry_def);
    self->run_work = bound_builtin((PyObject *)self, &run_work_def);
    if (self->future_pool == NULL || self->outbox == NULL || self->on_ready == NULL
        || self->on_deadline == NULL || self->on_retry == NULL || self->run_work == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    PyObject *loop = bound_builtin((PyObject *)self, &worker_loop_def);
    int rc = loop == NULL ? -1 : workers_init(&self->workers, self->run_work, loop);
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
    RPCObject *self = (RPCObject *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->module);
    Py_VISIT(self->user_id);
    Py_VISIT(self->peer_routing_id);
    Py_VISIT(self->registry);
    Py_VISIT(self->packer);
    Py_VISIT(self->proxy_to);
    Py_VISIT(self->auth_backend);
    Py_VISIT(self->heartbeat_backend);
    Py_VISIT(self->future_pool);
    Py_VISIT(self->last_endpoint);
    int wret = fdwatch_traverse(&self->watch, visit, arg);
    if (wret != 0)
        return wret;
    Py_VISIT(self->socket_obj);
    Py_VISIT(self->reader_waiter);
    Py_VISIT(self->on_ready);
    Py_VISIT(self->on_deadline);
    Py_VISIT(self->on_retry);
    Py_VISIT(self->run_work);
    int vret = workers_traverse(&self->workers, visit, arg);
    if (vret != 0)
        return vret;
    Py_VISIT(self->deadline_timer);
    Py_VISIT(self->outbox);
    Py_VISIT(self->retry_timer);
    Py_VISIT(self->dict);
    return 0;
}

static int
rpc_clear(PyObject *op)
{
    RPCObject *self = (RPCObject *)op;
    while (self->dl_head != NULL)
        deadline_unlink(self, self->dl_head);
    Py_CLEAR(self->user_id);
    Py_CLEAR(self->peer_routing_id);
    Py_CLEAR(self->registry);
    Py_CLEAR(self->packer);
    Py_CLEAR(self->proxy_to);
    Py_CLEAR(self->auth_backend);
    Py_CLEAR(self->heartbeat_backend);
    Py_CLEAR(self->future_pool);
    Py_CLEAR(self->last_endpoint);
    fdwatch_clear(&self->watch);
    Py_CLEAR(self->socket_obj);
    Py_CLEAR(self->reader_waiter);
    Py_CLEAR(self->on_ready);
    Py_CLEAR(self->on_deadline);
    Py_CLEAR(self->on_retry);
    Py_CLEAR(self->run_work);
    workers_clear(&self->workers);
    Py_CLEAR(self->deadline_timer);
    Py_CLEAR(self->outbox);
    Py_CLEAR(self->retry_timer);
    Py_CLEAR(self->dict);
    return 0;
}

static void
rpc_dealloc(PyObject *op)
{
    RPCObject *self = (RPCObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs(op);
    close_socket(self);
    fdwatch_close(&self->watch);
    green_watcher_close(self->deadline_timer);
    green_watcher_close(self->retry_timer);
    rpc_clear(op);
    msgpack_sbuffer_destroy(&self->sbuf);
    Py_CLEAR(self->module);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
get_timeout(PyObject *op, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble(((RPCObject *)op)->timeout);
}

static PyObject *
get_initialized(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(((RPCObject *)op)->sock != NULL);
}

static PyObject *
get_started(PyObject *op, void *closure)
{
    (void)closure;
    RPCObject *self = (RPCObject *)op;
    return PyBool_FromLong(self->started && !self->stopped);
}

/* A read-only view: the deadline list relies on the pool owning its futures. */
static PyObject *
get_future_pool(PyObject *op, void *closure)
{
    (void)closure;
    return PyDictProxy_New(((RPCObject *)op)->future_pool);
}

static PyObject *
get_pending_sends(PyObject *op, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(PyList_GET_SIZE(((RPCObject *)op)->outbox));
}

/* rpc.socket: the ROUTER socket as a Socket object, for plugins that set
 * options (plain_username, curve_server, zap_domain...). */
static PyObject *
get_socket(PyObject *op, void *closure)
{
    (void)closure;
    RPCObject *self = (RPCObject *)op;
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
    {"user_id", T_OBJECT, offsetof(RPCObject, user_id), READONLY, "This peer's identity (bytes or None)."},
    {"peer_routing_id", T_OBJECT, offsetof(RPCObject, peer_routing_id), READONLY, "Routing id calls go to (bytes or None)."},
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
    {"bind", rpc_bind, METH_O, "bind(endpoint): bind the socket; returns the resolved endpoint."},
    {"connect", rpc_connect, METH_O, "connect(endpoint): connect the socket."},
    {"disconnect", rpc_disconnect, METH_O, "disconnect(endpoint)."},
    {"start", rpc_start, METH_NOARGS, "Start the background reader (harmless if running)."},
    {"stop", rpc_stop, METH_NOARGS, "Stop the reader and plugins, close the socket; pending calls fail. Idempotent."},
    {"close", rpc_stop, METH_NOARGS, "Alias of stop()."},
    {"send_to", rpc_send_to, METH_O, "send_to(user_id): a proxy whose calls go to that peer."},
    {"send_message", rpc_send_message, METH_O,
     "send_message(frames): send a multipart message on the RPC's socket (for plugins)."},
    {"send_work", (PyCFunction)(void (*)(void))rpc_send_work_meth, METH_VARARGS | METH_KEYWORDS,
     "send_work(user_id, name, *args, **kwargs): send WORK; returns a future."},
    {"_read_loop", rpc_read_loop, METH_NOARGS, NULL},
    {NULL},
};

static PyType_Slot rpc_slots[] = {
    {Py_tp_doc, "Base of Server and Client: a ROUTER socket speaking pseud protocol v1."},
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
    if (st->RPC_Type == NULL)
        return -1;
    return PyModule_AddType(module, st->RPC_Type);
}
