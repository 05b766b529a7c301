/* SyncClient: a blocking client over a REQ socket, for code without gevent
 * (docs/guide/syncclient.rst). A call sends [v1, uuid, WORK, body]; the server's
 * ROUTER sees the usual six frames (REQ adds the empty delimiter) and the
 * reply comes back as [v1, uuid, OK|ERROR, body]. Waiting releases the GIL
 * and never touches gevent.
 *
 * Upstream's REQ socket was left stuck after a timeout (REQ must receive
 * before it may send again); here a timeout replaces the socket with a
 * fresh one connected to the same endpoints, so the next call works. */
#include "syncclient.h"
#include "codec.h"
#include "convert.h"
#include "errors.h"
#include "green.h"
#include "proxy.h"
#include "remote_error.h"
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <structmember.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    PyObject_HEAD
    pseud_state *st;
    PyObject *module;
    void *sock;
    PyObject *endpoints;        /* list of connected endpoints (bytes) */
    PyObject *bound;            /* list of bound endpoints, resolved (bytes) */
    PyObject *packer;
    PyObject *peer_routing_id;  /* the options as given (str, bytes or None) */
    PyObject *user_id;
    PyObject *password;
    PyObject *user_id_bytes;    /* and as libzmq takes them (bytes or None) */
    PyObject *password_bytes;
    PyObject *security_plugin;
    void *zmq_ctx;              /* where its sockets live (pseud_default_context) */
    PyObject *context;          /* the pyzmq Context that is, kept alive; or NULL */
    double timeout;
    int closed;
    int busy;                   /* a call is in progress (maybe in another thread) */
    msgid_gen msgids;
    PyObject *dict;
} SyncClientObject;

static int
set_bytes_option(void *s, int option, PyObject *value)
{
    return zmq_setsockopt(s, option, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
}

/* A new REQ socket configured for this client, or NULL with an exception. */
static void *
make_socket(SyncClientObject *self)
{
    void *s = zmq_socket(self->zmq_ctx, ZMQ_REQ);
    if (s == NULL) {
        errors_raise_what(self->st, zmq_errno(), "zmq_socket");
        return NULL;
    }
    int zero = 0;
    int ms = convert_timeout_ms(self->timeout);
    int rc = zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (rc == 0)
        rc = zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof(ms));
    if (rc == 0 && PyUnicode_CompareWithASCIIString(self->security_plugin, "plain") == 0) {
        if (self->user_id_bytes != Py_None)
            rc = set_bytes_option(s, ZMQ_PLAIN_USERNAME, self->user_id_bytes);
        /* libzmq refuses an empty password option: leave it unset then */
        if (rc == 0 && self->password_bytes != Py_None
            && PyBytes_GET_SIZE(self->password_bytes) > 0)
            rc = set_bytes_option(s, ZMQ_PLAIN_PASSWORD, self->password_bytes);
    }
    if (rc != 0) {
        errors_raise_what(self->st, zmq_errno(), "configuring the REQ socket");
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Bind `s` to `ep`; the old socket's listener on it may still be going
 * away (libzmq closes it in its I/O thread): retry for up to a second. */
static int
bind_again(void *s, const char *ep)
{
    int rc = -1;
    for (int i = 0; i < 100 && (rc = zmq_bind(s, ep)) != 0 && zmq_errno() == EADDRINUSE; i++) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
    return rc;
}

/* Replace the socket by a fresh one bound and connected to the same
 * endpoints. */
static int
reset_socket(SyncClientObject *self)
{
    if (self->sock != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->bound); i++)
            zmq_unbind(self->sock, PyBytes_AS_STRING(PyList_GET_ITEM(self->bound, i)));
        zmq_close(self->sock);
        self->sock = NULL;
    }
    if (self->closed)
        return 0;   /* close() came meanwhile: stay closed */
    void *s = make_socket(self);
    if (s == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->bound); i++) {
        PyObject *ep = PyList_GET_ITEM(self->bound, i);
        if (bind_again(s, PyBytes_AS_STRING(ep)) != 0) {
            errors_raise_what(self->st, zmq_errno(), "binding the REQ socket again to %R", ep);
            zmq_close(s);
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->endpoints); i++) {
        PyObject *ep = PyList_GET_ITEM(self->endpoints, i);
        if (zmq_connect(s, PyBytes_AS_STRING(ep)) != 0) {
            errors_raise_what(self->st, zmq_errno(), "reconnecting the REQ socket");
            zmq_close(s);
            return -1;
        }
    }
    self->sock = s;
    return 0;
}

/* Wait (GIL released) until the socket is readable or the deadline passes;
 * 1 readable, 0 timed out, -1 with an exception. Signals interrupt it. */
static int
wait_readable(SyncClientObject *self, double deadline)
{
    for (;;) {
        double left = deadline - green_now();
        if (left <= 0)
            return 0;
        long ms = (long)(left * 1000) + 1;
        if (ms > 200)
            ms = 200;      /* come back now and then for Ctrl-C */
        zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = zmq_poll(&item, 1, ms);
        Py_END_ALLOW_THREADS
        if (rc < 0 && zmq_errno() != EINTR) {
            errors_raise_what(self->st, zmq_errno(), "zmq_poll");
            return -1;
        }
        if (PyErr_CheckSignals() < 0)
            return -1;
        if (rc > 0 && (item.revents & ZMQ_POLLIN))
            return 1;
    }
}

/* Receive the reply's frames into `frames` (exactly 4 wanted). Returns the
 * number received (extra frames are read and dropped), -1 on error. */
static int
recv_reply(void *s, zmq_msg_t *frames, int *nframes)
{
    int n = 0, total = 0, more = 1;
    while (more) {
        zmq_msg_t extra;
        zmq_msg_t *slot = n < 4 ? &frames[n] : &extra;
        zmq_msg_init(slot);
        if (zmq_msg_recv(slot, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(slot);
            *nframes = n;
            return -1;
        }
        more = zmq_msg_more(slot);
        total++;
        if (slot == &extra)
            zmq_msg_close(&extra);
        else
            n++;
    }
    *nframes = n;
    return total;
}

static PyObject *sync_call(SyncClientObject *self, PyObject *name, PyObject *args,
                           PyObject *kwargs);

/* One call at a time: the GIL is released while waiting, and a libzmq
 * socket must not be used from two threads at once. */
static PyObject *
sync_send_work(PyObject *op, PyObject *peer, PyObject *name, PyObject *args, PyObject *kwargs)
{
    (void)peer;   /* REQ has one destination: whatever it is connected to */
    SyncClientObject *self = (SyncClientObject *)op;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "pseud: this SyncClient is already in a call (another thread?); "
                        "a SyncClient serves one call at a time: use one per thread");
        return NULL;
    }
    self->busy = 1;
    PyObject *result = sync_call(self, name, args, kwargs);
    self->busy = 0;
    if (self->closed && self->sock != NULL) {   /* close() was asked during the call */
        zmq_close(self->sock);
        self->sock = NULL;
    }
    return result;
}

/* TimeoutError naming the call and the timeout. The seconds go through a
 * float object: PyErr_Format has no %g (3.12+ raise SystemError for it). */
static PyObject *
raise_timeout(SyncClientObject *self, const char *what, PyObject *name)
{
    PyObject *seconds = PyFloat_FromDouble(self->timeout);
    if (seconds == NULL)
        return NULL;
    PyErr_Format(self->st->TimeoutError, "pseud: %s %R within %S s", what, name, seconds);
    Py_DECREF(seconds);
    return NULL;
}

static PyObject *
sync_call(SyncClientObject *self, PyObject *name, PyObject *args, PyObject *kwargs)
{
    if (self->closed || self->sock == NULL) {
        PyErr_SetString(PyExc_RuntimeError, self->closed ? "pseud: this SyncClient is closed"
                        : "pseud: you must connect first");
        return NULL;
    }
    PyObject *kw = kwargs != NULL ? Py_NewRef(kwargs) : PyDict_New();
    PyObject *work = kw != NULL ? PyTuple_Pack(3, name, args, kw) : NULL;
    Py_XDECREF(kw);
    if (work == NULL)
        return NULL;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    int rc = codec_pack(self->packer, work, &body);
    Py_DECREF(work);
    if (rc < 0) {
        msgpack_sbuffer_destroy(&body);
        return NULL;
    }
    unsigned char uuid[16];
    msgid_next(&self->msgids, uuid);

    void *s = self->sock;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = zmq_send(s, PSEUD_VERSION, PSEUD_VERSION_LEN, ZMQ_SNDMORE) >= 0
           && zmq_send(s, uuid, 16, ZMQ_SNDMORE) >= 0
           && zmq_send(s, PSEUD_WORK, 1, ZMQ_SNDMORE) >= 0
           && zmq_send(s, body.data, body.size, 0) >= 0;
    Py_END_ALLOW_THREADS
    msgpack_sbuffer_destroy(&body);
    if (!sent) {
        int err = zmq_errno();
        reset_socket(self);
        PyErr_Clear();
        if (err == EAGAIN) {
            return raise_timeout(self, "could not send", name);
        }
        return errors_raise_what(self->st, err, "sending the request");
    }

    double deadline = green_now() + self->timeout;
    zmq_msg_t frames[4];
    int nframes = 0, total = -1, ready;
    for (;;) {
        ready = wait_readable(self, deadline);
        if (ready <= 0)
            break;
        /* readable, yet REQ may drop what came (a reply from another pipe) */
        total = recv_reply(self->sock, frames, &nframes);
        if (total >= 0 || zmq_errno() != EAGAIN)
            break;
    }
    if (ready <= 0) {
        /* timeout or interrupted: the REQ socket now waits for a reply that
         * may never come; a fresh one lets the next call go out */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (reset_socket(self) < 0)
            PyErr_Clear();
        if (ready < 0) {
            PyErr_Restore(et, ev, tb);
            return NULL;
        }
        return raise_timeout(self, "no reply to", name);
    }
    PyObject *result = NULL;
    if (total < 0) {
        errors_raise_what(self->st, zmq_errno(), "receiving the reply");
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (reset_socket(self) < 0)
            PyErr_Clear();
        PyErr_Restore(et, ev, tb);
    }
    else if (total != 4 || zmq_msg_size(&frames[0]) != PSEUD_VERSION_LEN
             || memcmp(zmq_msg_data(&frames[0]), PSEUD_VERSION, PSEUD_VERSION_LEN) != 0
             || zmq_msg_size(&frames[2]) != 1) {
        PyErr_SetString(PyExc_Exception, "pseud: malformed reply from the server");
    }
    else if (zmq_msg_size(&frames[1]) != 16 || memcmp(zmq_msg_data(&frames[1]), uuid, 16) != 0) {
        PyErr_SetString(PyExc_Exception, "pseud: the server replied to another call");
    }
    else {
        char type = *(char *)zmq_msg_data(&frames[2]);
        PyObject *value = codec_unpack(self->packer, zmq_msg_data(&frames[3]),
                                       zmq_msg_size(&frames[3]));
        if (value == NULL) {
            /* leave the codec's ValueError: the body was malformed */
        }
        else if (type == PSEUD_OK[0]) {
            result = value;
            value = NULL;
        }
        else if (type == PSEUD_ERROR[0]) {
            PyObject *exc = remote_error_rebuild(self->st, value);
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
        }
        else {
            PyErr_Format(PyExc_Exception, "pseud: unexpected reply type 0x%02x",
                         (unsigned char)type);
        }
        Py_XDECREF(value);
    }
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return result;
}

/* ------------------------------------------------------------ methods */

/* What bind and connect do first: refuse a closed client, convert the
 * endpoint, make the socket if it is not there yet. Returns the endpoint
 * (bytes, new reference) or NULL with an exception. */
static PyObject *
prepare_endpoint(SyncClientObject *self, PyObject *endpoint)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: this SyncClient is closed");
        return NULL;
    }
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL)
        return NULL;
    if (self->sock == NULL && (self->sock = make_socket(self)) == NULL) {
        Py_DECREF(ep);
        return NULL;
    }
    return ep;
}

static PyObject *
sync_connect(PyObject *op, PyObject *endpoint)
{
    SyncClientObject *self = (SyncClientObject *)op;
    PyObject *ep = prepare_endpoint(self, endpoint);
    if (ep == NULL)
        return NULL;
    if (zmq_connect(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot connect to %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    int rc = PyList_Append(self->endpoints, ep);
    Py_DECREF(ep);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* bind(endpoint), as upstream's SyncClient: a peer connects to us. Returns
 * the resolved endpoint, as Server.bind does. */
static PyObject *
sync_bind(PyObject *op, PyObject *endpoint)
{
    SyncClientObject *self = (SyncClientObject *)op;
    PyObject *ep = prepare_endpoint(self, endpoint);
    if (ep == NULL)
        return NULL;
    if (zmq_bind(self->sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(self->st, zmq_errno(), "cannot bind %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    Py_DECREF(ep);
    PyObject *last = convert_last_endpoint(self->st, self->sock);
    PyObject *raw = last != NULL ? PyUnicode_AsUTF8String(last) : NULL;
    if (raw == NULL || PyList_Append(self->bound, raw) < 0) {
        Py_XDECREF(raw);
        Py_XDECREF(last);
        return NULL;
    }
    Py_DECREF(raw);
    return last;
}

static PyObject *
sync_disconnect(PyObject *op, PyObject *endpoint)
{
    SyncClientObject *self = (SyncClientObject *)op;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL)
        return NULL;
    Py_ssize_t i;
    for (i = 0; i < PyList_GET_SIZE(self->endpoints); i++) {
        int eq = PyObject_RichCompareBool(PyList_GET_ITEM(self->endpoints, i), ep, Py_EQ);
        if (eq < 0) {
            Py_DECREF(ep);
            return NULL;
        }
        if (eq)
            break;
    }
    if (i == PyList_GET_SIZE(self->endpoints) || self->sock == NULL) {
        PyErr_Format(PyExc_ValueError, "pseud: not connected to %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    if (PyList_SetSlice(self->endpoints, i, i + 1, NULL) < 0) {
        Py_DECREF(ep);
        return NULL;
    }
    zmq_disconnect(self->sock, PyBytes_AS_STRING(ep));
    Py_DECREF(ep);
    Py_RETURN_NONE;
}

static PyObject *
sync_close(PyObject *op, PyObject *unused)
{
    (void)unused;
    SyncClientObject *self = (SyncClientObject *)op;
    self->closed = 1;
    if (self->sock != NULL && !self->busy) {   /* else the call closes it when done */
        zmq_close(self->sock);
        self->sock = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sync_send_work_meth(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
        PyErr_SetString(PyExc_TypeError, "send_work(name: str, *args, **kwargs)");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL)
        return NULL;
    PyObject *res = sync_send_work(op, NULL, PyTuple_GET_ITEM(args, 0), rest, kwargs);
    Py_DECREF(rest);
    return res;
}

static PyObject *
sync_enter(PyObject *op, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(op);
}

static PyObject *
sync_exit(PyObject *op, PyObject *args)
{
    (void)args;
    PyObject *r = sync_close(op, NULL);
    Py_XDECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *
sync_getattro(PyObject *op, PyObject *name)
{
    PyObject *res = PyObject_GenericGetAttr(op, name);
    if (res != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return res;
    if (!PyUnicode_Check(name)
        || (PyUnicode_GET_LENGTH(name) > 1 && PyUnicode_READ_CHAR(name, 0) == '_'
            && PyUnicode_READ_CHAR(name, 1) == '_'))
        return NULL;
    PyErr_Clear();
    SyncClientObject *self = (SyncClientObject *)op;
    if (self->sock == NULL) {
        PyErr_Format(PyExc_RuntimeError, self->closed
                     ? "pseud: this SyncClient is closed; cannot call %R"
                     : "pseud: you must connect first in order to call %R", name);
        return NULL;
    }
    return proxy_new(self->st, op, sync_send_work, NULL, name);
}

static int
sync_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    SyncClientObject *self = (SyncClientObject *)op;
    static char *kwlist[] = {"peer_routing_id", "timeout", "user_id", "password",
                             "security_plugin", "translation_table", "context", "io_loop",
                             "public_key", "secret_key", "peer_public_key",
                             "heartbeat_plugin", "registry", "proxy_to", "loop", NULL};
    PyObject *peer = Py_None, *user_id = Py_None, *password = Py_None, *table = Py_None;
    PyObject *plugin = NULL, *ignored[9] = {0};
    PyObject *timeout_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOOUOOOOOOOOOO:SyncClient", kwlist,
                                     &peer, &timeout_obj, &user_id, &password, &plugin,
                                     &table, &ignored[0], &ignored[1], &ignored[2],
                                     &ignored[3], &ignored[4], &ignored[5], &ignored[6],
                                     &ignored[7], &ignored[8]))
        return -1;
    double timeout = 5.0;
    if (timeout_obj != NULL) {
        if (PyBool_Check(timeout_obj) || !(PyLong_Check(timeout_obj) || PyFloat_Check(timeout_obj))) {
            PyErr_Format(PyExc_TypeError, "pseud: timeout must be a number of seconds, not %R",
                         timeout_obj);
            return -1;
        }
        timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1.0 && PyErr_Occurred())
            return -1;
        if (!(timeout > 0) || !isfinite(timeout)) {
            PyErr_Format(PyExc_ValueError, "pseud: timeout must be positive and finite, not %R",
                         timeout_obj);
            return -1;
        }
    }
    if (plugin == NULL) {
        plugin = PyUnicode_FromString("noop_auth_backend");
        if (plugin == NULL)
            return -1;
    }
    else {
        Py_INCREF(plugin);
    }
    if (PyUnicode_CompareWithASCIIString(plugin, "noop_auth_backend") != 0
        && PyUnicode_CompareWithASCIIString(plugin, "plain") != 0) {
        PyErr_Format(PyExc_ValueError, "pseud: SyncClient does not know security_plugin %R; "
                     "known: noop_auth_backend, plain", plugin);
        Py_DECREF(plugin);
        return -1;
    }
    Py_XSETREF(self->security_plugin, plugin);
    if (self->sock == NULL) {   /* context= is not used: the peers' default (module.h) */
        PyObject *keep;
        int secured = PyUnicode_CompareWithASCIIString(plugin, "noop_auth_backend") != 0;
        void *ctx = pseud_default_context(self->st, secured, &keep);
        if (ctx == NULL)
            return -1;
        self->zmq_ctx = ctx;
        Py_XSETREF(self->context, keep);
    }
    self->timeout = timeout;
    /* read back as given (as the RPC's, upstream's); converted to bytes
     * for libzmq here, so that a wrong type fails now */
    PyObject *peer_bytes = convert_identity(peer, "peer_routing_id");
    if (peer_bytes == NULL)
        return -1;
    Py_DECREF(peer_bytes);      /* a REQ socket needs no routing id */
    PyObject *user_bytes = convert_identity(user_id, "user_id");
    if (user_bytes == NULL)
        return -1;
    PyObject *password_bytes = convert_identity(password, "password");
    if (password_bytes == NULL) {
        Py_DECREF(user_bytes);
        return -1;
    }
    Py_XSETREF(self->user_id_bytes, user_bytes);
    Py_XSETREF(self->password_bytes, password_bytes);
    Py_XSETREF(self->peer_routing_id, Py_NewRef(peer));
    Py_XSETREF(self->user_id, Py_NewRef(user_id));
    Py_XSETREF(self->password, Py_NewRef(password));
    if (table != Py_None) {
        PyObject *packer = PyObject_CallOneArg((PyObject *)self->st->Packer_Type, table);
        if (packer == NULL)
            return -1;
        Py_XSETREF(self->packer, packer);
    }
    return 0;
}

static PyObject *
sync_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    SyncClientObject *self = (SyncClientObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->st = st;
    self->module = Py_XNewRef(PyType_GetModuleByDef(type, &pseud_module_def));
    self->zmq_ctx = st->zmq_ctx;
    self->timeout = 5.0;
    self->endpoints = PyList_New(0);
    self->bound = PyList_New(0);
    self->packer = Py_NewRef(st->default_packer);
    self->peer_routing_id = Py_NewRef(Py_None);
    self->user_id = Py_NewRef(Py_None);
    self->password = Py_NewRef(Py_None);
    self->user_id_bytes = Py_NewRef(Py_None);
    self->password_bytes = Py_NewRef(Py_None);
    self->security_plugin = PyUnicode_FromString("noop_auth_backend");
    msgid_init(&self->msgids);
    if (self->endpoints == NULL || self->bound == NULL || self->security_plugin == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
sync_traverse(PyObject *op, visitproc visit, void *arg)
{
    SyncClientObject *self = (SyncClientObject *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->module);
    Py_VISIT(self->endpoints);
    Py_VISIT(self->bound);
    Py_VISIT(self->packer);
    Py_VISIT(self->peer_routing_id);
    Py_VISIT(self->user_id);
    Py_VISIT(self->password);
    Py_VISIT(self->user_id_bytes);
    Py_VISIT(self->password_bytes);
    Py_VISIT(self->security_plugin);
    Py_VISIT(self->dict);
    return 0;
}

static int
sync_clear(PyObject *op)
{
    SyncClientObject *self = (SyncClientObject *)op;
    Py_CLEAR(self->endpoints);
    Py_CLEAR(self->bound);
    Py_CLEAR(self->packer);
    Py_CLEAR(self->peer_routing_id);
    Py_CLEAR(self->user_id);
    Py_CLEAR(self->password);
    Py_CLEAR(self->user_id_bytes);
    Py_CLEAR(self->password_bytes);
    Py_CLEAR(self->security_plugin);
    Py_CLEAR(self->dict);
    return 0;
}

static void
sync_dealloc(PyObject *op)
{
    SyncClientObject *self = (SyncClientObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->sock != NULL) {
        zmq_close(self->sock);
        self->sock = NULL;
    }
    sync_clear(op);
    /* only after the socket (not in sync_clear): a pyzmq context whose
     * last reference this is would wait forever for that socket */
    Py_CLEAR(self->context);
    Py_CLEAR(self->module);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
sync_get_timeout(PyObject *op, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble(((SyncClientObject *)op)->timeout);
}

static PyGetSetDef sync_getset[] = {
    {"timeout", sync_get_timeout, NULL, "Seconds a call may take before TimeoutError.", NULL},
    {NULL},
};

static PyMemberDef sync_members[] = {
    {"peer_routing_id", T_OBJECT, offsetof(SyncClientObject, peer_routing_id), READONLY,
     "Routing id of the server calls go to, as given (str or bytes; None when unset)."},
    {"user_id", T_OBJECT, offsetof(SyncClientObject, user_id), READONLY,
     "The user id sent for PLAIN security, as given (str or bytes; None without)."},
    {"password", T_OBJECT, offsetof(SyncClientObject, password), READONLY,
     "The password sent for PLAIN security, as given (str or bytes; None without)."},
    {"security_plugin", T_OBJECT, offsetof(SyncClientObject, security_plugin), READONLY,
     "The security plugin's name ('noop_auth_backend' or 'plain')."},
    {"packer", T_OBJECT, offsetof(SyncClientObject, packer), READONLY,
     "The msgpack Packer of calls and results."},
    {"__dictoffset__", T_PYSSIZET, offsetof(SyncClientObject, dict), READONLY, NULL},
    {NULL},
};

static PyMethodDef sync_methods[] = {
    {"bind", sync_bind, METH_O, "bind($self, endpoint, /)\n--\n\nBind the socket; return the resolved endpoint."},
    {"connect", sync_connect, METH_O, "connect($self, endpoint, /)\n--\n\nConnect the socket."},
    {"disconnect", sync_disconnect, METH_O, "disconnect($self, endpoint, /)\n--\n\nDisconnect the socket from endpoint."},
    {"close", sync_close, METH_NOARGS, "close($self, /)\n--\n\nClose the socket. Idempotent."},
    {"stop", sync_close, METH_NOARGS, "stop($self, /)\n--\n\nAlias of close()."},
    {"send_work", (PyCFunction)(void (*)(void))sync_send_work_meth, METH_VARARGS | METH_KEYWORDS,
     "send_work($self, name, /, *args, **kwargs)\n--\n\nCall and return the result (blocking)."},
    {"__enter__", sync_enter, METH_NOARGS, NULL},
    {"__exit__", sync_exit, METH_VARARGS, NULL},
    {NULL},
};

static PyType_Slot sync_slots[] = {
    {Py_tp_doc, "SyncClient(peer_routing_id=None, timeout=5, user_id=None, password=None, "
                "security_plugin='noop_auth_backend', translation_table=None, context=None, "
                "io_loop=None, public_key=None, secret_key=None, peer_public_key=None, "
                "heartbeat_plugin=None, registry=None, proxy_to=None, loop=None)\n--\n\n"
                "A blocking RPC client over "
                "a REQ socket; `client.name(*args)` returns the result itself."},
    {Py_tp_new, sync_new},
    {Py_tp_init, sync_init},
    {Py_tp_getattro, sync_getattro},
    {Py_tp_traverse, sync_traverse},
    {Py_tp_clear, sync_clear},
    {Py_tp_dealloc, sync_dealloc},
    {Py_tp_methods, sync_methods},
    {Py_tp_members, sync_members},
    {Py_tp_getset, sync_getset},
    {0, NULL},
};

static PyType_Spec sync_spec = {
    .name = "pseud._pseud.SyncClient",
    .basicsize = sizeof(SyncClientObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = sync_slots,
};

int
syncclient_init_module(PyObject *module, pseud_state *st)
{
    (void)st;
    PyObject *tp = PyType_FromModuleAndSpec(module, &sync_spec, NULL);
    if (tp == NULL)
        return -1;
    int rc = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return rc;
}
