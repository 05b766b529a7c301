/* _pseud.Context, the process-wide libzmq context seen from Python (the
 * module owns the context itself), and the module functions around keys
 * and libzmq: curve_keypair, z85_encode/z85_decode, has, strerror. */
#include "socket.h"
#include "convert.h"
#include "errors.h"

#include <stdint.h>
#include <zmq.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
} ContextObject;


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
    int kind = convert_int(arg);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    void *h = zmq_socket(st->zmq_ctx, kind);
    if (h == NULL)
        return errors_raise_zmq(st);
    PyObject *s = socket_wrap(st, h, 1);
    if (s == NULL)
        zmq_close(h);
    return s;
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
     "instance($type, /)\n--\n\nThe process-wide context of pseud (helper sockets, secured peers; "
     "peers without context= unless pyzmq's is shared: docs/guide/calls.rst)."},
    {"socket", ctx_socket, METH_O, "socket($self, kind, /)\n--\n\nA new _pseud.Socket of that kind (ROUTER, ...)."},
    {NULL},
};

static PyGetSetDef ctx_getset[] = {
    {"underlying", ctx_get_underlying, NULL, "The libzmq context (void *) as an int.", NULL},
    {"closed", ctx_get_closed, NULL, "Always False: the module owns the context.", NULL},
    {NULL},
};

static PyType_Slot ctx_slots[] = {
    {Py_tp_doc, "Context()\n--\n\nThe process-wide libzmq context of pseud (never terminated by Python "
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
        return errors_raise_zmq(st);
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
    int err = convert_int(arg);
    if (err == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(zmq_strerror(err));
}

static PyMethodDef context_functions[] = {
    {"curve_keypair", mod_curve_keypair, METH_NOARGS,
     "curve_keypair($module, /)\n--\n\nA new CURVE key pair (public, secret), Z85-encoded bytes."},
    {"z85_encode", mod_z85_encode, METH_O,
     "z85_encode($module, data, /)\n--\n\ndata in Z85, as bytes; len(data) must be a multiple of 4."},
    {"z85_decode", mod_z85_decode, METH_O,
     "z85_decode($module, data, /)\n--\n\nDecode Z85 bytes or str; the length must be a multiple of 5."},
    {"has", mod_has, METH_O, "has($module, capability, /)\n--\n\nWhether libzmq has that capability (zmq_has: 'curve', 'ipc', ...)."},
    {"strerror", mod_strerror, METH_O, "strerror($module, errno, /)\n--\n\nlibzmq's message for that error number."},
    {NULL},
};

int
context_init_module(PyObject *module, pseud_state *st)
{
    if (PyModule_AddFunctions(module, context_functions) < 0)
        return -1;
    st->Context_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ctx_spec, NULL);
    if (st->Context_Type == NULL || PyModule_AddType(module, st->Context_Type) < 0)
        return -1;
    st->context = PyType_GenericAlloc(st->Context_Type, 0);
    return st->context == NULL ? -1 : 0;
}
