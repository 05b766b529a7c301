/* _pseud.Socket, the pyzmq-like socket plugins use (see socket.h): the
 * type, its lifecycle (wrap, close, detach, dealloc), bind/connect, and
 * its Python methods, which parse arguments and call the cooperative
 * engine in socket_io.c. Options are in sockopt.c, Frame in frame.c,
 * Context and the key functions in context.c. */
#include "socket.h"
#include "socket_object.h"
#include "convert.h"
#include "errors.h"
#include "green.h"

#include <errno.h>
#include <string.h>
#include <structmember.h>

/* ------------------------------------------------------------ lifecycle */

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

/* Close for Python; zmq_close only when `zclose` and we own the handle. */
static void
do_close(SocketObject *self, int zclose, int linger, int set_linger)
{
    if (self->closed)
        return;
    PyObject *saved = errors_save();
    self->closed = 1;
    /* the watchers must go before the fd they watch */
    fdwatch_close(&self->watch);
    if (self->handle != NULL && zclose && self->owned) {
        if (set_linger)
            zmq_setsockopt(self->handle, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(self->handle);
    }
    self->handle = NULL;
    Py_CLEAR(self->send_owner);
    socket_wake_all(self);
    errors_restore(saved);
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

int
socket_require_open(SocketObject *self)
{
    if (self->closed) {
        errors_raise(self->st, ENOTSOCK);
        return -1;
    }
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
        return errors_raise_zmq(st);
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
    int vret = fdwatch_traverse(&self->watch, visit, arg);
    if (vret != 0)
        return vret;
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
    fdwatch_clear(&self->watch);
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
    fdwatch_close(&self->watch);
    if (!self->closed) {
        if (self->handle != NULL && self->owned) {
            int zero = 0;
            zmq_setsockopt(self->handle, ZMQ_LINGER, &zero, sizeof(zero));
            zmq_close(self->handle);
        }
        self->handle = NULL;
        self->closed = 1;
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
    return PyUnicode_FromFormat("<_pseud.Socket type=%d fd=%d at %p>", kind, self->watch.fd, op);
}

static PyObject *
endpoint_call(SocketObject *self, PyObject *ep, int (*fn)(void *, const char *))
{
    if (socket_require_open(self) < 0)
        return NULL;
    PyObject *bytes = convert_endpoint(ep);
    if (bytes == NULL)
        return NULL;
    int rc = fn(self->handle, PyBytes_AS_STRING(bytes));
    int err = zmq_errno();
    Py_DECREF(bytes);
    if (rc != 0)
        return errors_raise(self->st, err);
    /* an inproc connect attaches a pipe without signalling ZMQ_FD: a
     * sender parked for want of a peer must hear about it from us */
    socket_after_io(self);
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
    return convert_last_endpoint(self->st, self->handle);
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
        ms = convert_int(linger);
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
                         "watching", self->watch.watching,
                         "wake_scheduled", self->watch.wake_scheduled,
                         "missed_wakeups", self->watch.missed_wakeups);
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

/* ------------------------------------------------------ send and recv */

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
    int rc = socket_send_frames(SOCK(op), &view, 1, flags);
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
        rc = socket_send_frames(SOCK(op), views, n, flags);
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
        rc = socket_send_frames(SOCK(op), &view, 1, flags);
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
    int rc = socket_recv_frame(self, &msg, flags, &deadline, &have_deadline);
    PyObject *res = NULL;
    if (rc == 0) {
        socket_after_io(self);
        res = frame_or_bytes(self->st, &msg, copy);
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
    int rc = socket_recv_frame(self, &msg, flags, &deadline, &have_deadline);
    PyObject *res = NULL;
    if (rc == 0) {
        socket_after_io(self);
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
    return socket_recv_message(self, flags, copy);
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
    int events = socket_wait_events(self, flags, deadline);
    return events < 0 ? NULL : PyLong_FromLong(events);
}

/* ------------------------------------------------------------- the type */

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
    if (socket_require_open(self) < 0)
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
    {#attr, sockopt_attr_get, sockopt_attr_set, "socket option " #CONST, \
     (void *)&sockopt_table[OPTIDX_##attr]},
    SOCKOPTS(X)
#undef X
    {NULL},
};

static PyMethodDef sock_methods[] = {
    {"bind", sock_bind, METH_O,
     "bind($self, endpoint, /)\n--\n\nBind; return the endpoint bound (ZMQ_LAST_ENDPOINT, str)."},
    {"connect", sock_connect, METH_O, "connect($self, endpoint, /)\n--\n\nConnect the socket (endpoint: str)."},
    {"unbind", sock_unbind, METH_O, "unbind($self, endpoint, /)\n--\n\nUnbind the socket (endpoint: str)."},
    {"disconnect", sock_disconnect, METH_O, "disconnect($self, endpoint, /)\n--\n\nDisconnect the socket (endpoint: str)."},
    {"close", (PyCFunction)(void (*)(void))sock_close, METH_VARARGS | METH_KEYWORDS,
     "close($self, /, linger=None)\n--\n\nClose the socket (idempotent); blocked greenlets get "
     "ZMQError(ENOTSOCK)."},
    {"send", (PyCFunction)(void (*)(void))sock_send, METH_VARARGS | METH_KEYWORDS,
     "send($self, /, data, flags=0, copy=True, track=False)\n--\n\nQueue one frame (bytes-like)."},
    {"send_multipart", (PyCFunction)(void (*)(void))sock_send_multipart,
     METH_VARARGS | METH_KEYWORDS,
     "send_multipart($self, /, msg_parts, flags=0, copy=True, track=False)\n--\n\nQueue a message, "
     "never interleaved with other greenlets' frames."},
    {"send_string", (PyCFunction)(void (*)(void))sock_send_string, METH_VARARGS | METH_KEYWORDS,
     "send_string($self, /, u, flags=0, copy=True, encoding='utf-8')\n--\n\nQueue one frame: u encoded."},
    {"recv", (PyCFunction)(void (*)(void))sock_recv, METH_VARARGS | METH_KEYWORDS,
     "recv($self, /, flags=0, copy=True, track=False)\n--\n\nOne frame: bytes, or a Frame when copy is false."},
    {"recv_multipart", (PyCFunction)(void (*)(void))sock_recv_multipart,
     METH_VARARGS | METH_KEYWORDS,
     "recv_multipart($self, /, flags=0, copy=True, track=False)\n--\n\nOne message: a list of bytes (or Frames)."},
    {"recv_string", (PyCFunction)(void (*)(void))sock_recv_string, METH_VARARGS | METH_KEYWORDS,
     "recv_string($self, /, flags=0, encoding='utf-8')\n--\n\nOne frame, decoded to str."},
    {"poll", (PyCFunction)(void (*)(void))sock_poll, METH_VARARGS | METH_KEYWORDS,
     "poll($self, /, timeout=None, flags=1)\n--\n\nThe ready events among flags (0 on timeout; flags=1 is POLLIN); "
     "timeout in milliseconds. With POLLIN|POLLOUT it waits for input."},
    {"setsockopt", (PyCFunction)(void (*)(void))sockopt_setsockopt, METH_FASTCALL,
     "setsockopt($self, option, value, /)\n--\n\nSet a socket option."},
    {"set", (PyCFunction)(void (*)(void))sockopt_setsockopt, METH_FASTCALL,
     "set($self, option, value, /)\n--\n\nAlias of setsockopt()."},
    {"getsockopt", sockopt_getsockopt, METH_O, "getsockopt($self, option, /)\n--\n\nA socket option's value: int or bytes."},
    {"get", sockopt_getsockopt, METH_O, "get($self, option, /)\n--\n\nAlias of getsockopt()."},
    {"_debug_state", sock_debug_state, METH_NOARGS,
     "_debug_state($self, /)\n--\n\nA dict of queue lengths and flags (for tests)."},
    {"__enter__", sock_enter, METH_NOARGS, NULL},
    {"__exit__", sock_exit, METH_VARARGS, NULL},
    {NULL},
};

static PyMemberDef sock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SocketObject, weakreflist), READONLY, NULL},
    {NULL},
};

static PyType_Slot sock_slots[] = {
    {Py_tp_doc, "Socket(context, socket_type)\n--\n\nA libzmq socket, cooperative under gevent "
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

/* ----------------------------------------------------------- the C API */

PyObject *
socket_new(pseud_state *st, int kind)
{
    void *h = zmq_socket(st->zmq_ctx, kind);
    if (h == NULL)
        return errors_raise_zmq(st);
    PyObject *s = socket_wrap(st, h, 1);
    if (s == NULL)
        zmq_close(h);
    return s;
}

int
socket_is_closed(PyObject *sock)
{
    return SOCK(sock)->closed;
}

PyObject *
socket_bind_endpoint(PyObject *sock, PyObject *endpoint)
{
    return sock_bind(sock, endpoint);
}

int
socket_unbind_endpoint(PyObject *sock, PyObject *endpoint)
{
    PyObject *r = sock_unbind(sock, endpoint);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

void
socket_close(PyObject *sock)
{
    do_close(SOCK(sock), 1, 0, 0);
}

GREEN_SWITCHES PyObject *
socket_recv_list(PyObject *sock)
{
    return socket_recv_message(SOCK(sock), 0, 1);
}

GREEN_SWITCHES int
socket_send_list(PyObject *sock, PyObject *frames)
{
    Py_ssize_t n = PyList_GET_SIZE(frames);
    Py_buffer *views = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(Py_buffer));
    if (views == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t got = 0;
    int rc = 0;
    for (; got < n && rc == 0; got++)
        rc = PyObject_GetBuffer(PyList_GET_ITEM(frames, got), &views[got], PyBUF_SIMPLE);
    if (rc < 0)
        got--;    /* the failed one holds nothing */
    else
        rc = socket_send_frames(SOCK(sock), views, n, 0);
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return rc;
}

/* ---------------------------------------------------------------- init */

int
socket_init_module(PyObject *module, pseud_state *st)
{
    st->Socket_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &sock_spec, NULL);
    if (st->Socket_Type == NULL)
        return -1;
    return PyModule_AddType(module, st->Socket_Type);
}
