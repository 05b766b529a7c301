/* AttributeWrapper: the attribute-chained method proxy (docs/guide/calls.rst).
 *
 * `client.a.b` is a proxy whose dotted name is 'a.b'; calling it sends WORK
 * 'a.b'. Upstream code reads `proxy.name` and compares it to the dotted
 * name, yet `client.this.a.name()` must call the remote 'this.a.name'. So
 * the proxy made for an attribute called 'name' calls '<parent>.name' but
 * compares, hashes and prints as '<parent>'. */
#include "proxy.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *rpc;      /* the RPC (or SyncClient) sending the work */
    proxy_sender send;
    PyObject *peer;     /* bytes, or NULL for the RPC's peer_routing_id */
    PyObject *name;     /* dotted name called */
    PyObject *equals;   /* what it compares equal to (see above) */
    vectorcallfunc vectorcall;
} ProxyObject;

static PyObject *proxy_vectorcall(PyObject *, PyObject *const *, size_t, PyObject *);

static PyObject *
proxy_make(PyTypeObject *tp, PyObject *rpc, proxy_sender send, PyObject *peer,
           PyObject *name, PyObject *equals)
{
    ProxyObject *self = PyObject_GC_New(ProxyObject, tp);
    if (self == NULL)
        return NULL;
    self->rpc = Py_NewRef(rpc);
    self->send = send;
    self->peer = Py_XNewRef(peer);
    self->name = Py_NewRef(name);
    self->equals = Py_NewRef(equals);
    self->vectorcall = proxy_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

PyObject *
proxy_new(pseud_state *st, PyObject *target, proxy_sender send, PyObject *peer,
          PyObject *name)
{
    return proxy_make(st->Proxy_Type, target, send, peer, name, name);
}

static PyObject *
proxy_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ProxyObject *self = (ProxyObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *tuple = PyTuple_New(nargs);
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    PyObject *kwargs = NULL;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_DECREF(tuple);
                Py_DECREF(kwargs);
                return NULL;
            }
        }
    }
    if (self->rpc == NULL) {   /* cleared by the GC while a cycle was torn down */
        Py_DECREF(tuple);
        Py_XDECREF(kwargs);
        PyErr_SetString(PyExc_RuntimeError, "pseud: this proxy's RPC is gone");
        return NULL;
    }
    PyObject *fut = self->send(self->rpc, self->peer, self->name, tuple, kwargs);
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return fut;
}

static PyObject *
proxy_getattro(PyObject *op, PyObject *attr)
{
    ProxyObject *self = (ProxyObject *)op;
    /* dunder names stay Python's (pickle, copy, inspect probe them) */
    if (PyUnicode_Check(attr) && PyUnicode_GET_LENGTH(attr) > 1
        && PyUnicode_READ_CHAR(attr, 0) == '_' && PyUnicode_READ_CHAR(attr, 1) == '_')
        return PyObject_GenericGetAttr(op, attr);
    /* send_to() gives a proxy with an empty name: its attributes start the name */
    PyObject *full = PyUnicode_GET_LENGTH(self->name) == 0
        ? PyUnicode_FromObject(attr)
        : PyUnicode_FromFormat("%U.%U", self->name, attr);
    if (full == NULL)
        return NULL;
    int is_name = PyUnicode_Check(attr) && PyUnicode_CompareWithASCIIString(attr, "name") == 0;
    PyObject *res = proxy_make(Py_TYPE(op), self->rpc, self->send, self->peer, full,
                               is_name ? self->name : full);
    Py_DECREF(full);
    return res;
}

static PyObject *
proxy_richcompare(PyObject *op, PyObject *other, int opid)
{
    ProxyObject *self = (ProxyObject *)op;
    if (Py_TYPE(other) == Py_TYPE(op))
        other = ((ProxyObject *)other)->equals;
    return PyObject_RichCompare(self->equals, other, opid);
}

static Py_hash_t
proxy_hash(PyObject *op)
{
    return PyObject_Hash(((ProxyObject *)op)->equals);
}

static PyObject *
proxy_str(PyObject *op)
{
    return Py_NewRef(((ProxyObject *)op)->equals);
}

static PyObject *
proxy_repr(PyObject *op)
{
    ProxyObject *self = (ProxyObject *)op;
    if (self->peer != NULL)
        return PyUnicode_FromFormat("<pseud.AttributeWrapper %R to %R>", self->name, self->peer);
    return PyUnicode_FromFormat("<pseud.AttributeWrapper %R>", self->name);
}

static int
proxy_traverse(PyObject *op, visitproc visit, void *arg)
{
    ProxyObject *self = (ProxyObject *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->rpc);
    Py_VISIT(self->peer);
    Py_VISIT(self->name);
    Py_VISIT(self->equals);
    return 0;
}

static int
proxy_clear(PyObject *op)
{
    ProxyObject *self = (ProxyObject *)op;
    Py_CLEAR(self->rpc);
    Py_CLEAR(self->peer);
    Py_CLEAR(self->name);
    Py_CLEAR(self->equals);
    return 0;
}

static void
proxy_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    proxy_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMemberDef proxy_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(ProxyObject, vectorcall), READONLY, NULL},
    {NULL},
};

static PyType_Slot proxy_slots[] = {
    {Py_tp_doc, "Proxy for a remote callable: attribute access extends the dotted "
                "name, calling it sends the work and returns a future."},
    {Py_tp_getattro, proxy_getattro},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_richcompare, proxy_richcompare},
    {Py_tp_hash, proxy_hash},
    {Py_tp_str, proxy_str},
    {Py_tp_repr, proxy_repr},
    {Py_tp_traverse, proxy_traverse},
    {Py_tp_clear, proxy_clear},
    {Py_tp_dealloc, proxy_dealloc},
    {Py_tp_members, proxy_members},
    {0, NULL},
};

static PyType_Spec proxy_spec = {
    .name = "pseud._pseud.AttributeWrapper",
    .basicsize = sizeof(ProxyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
             | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = proxy_slots,
};

int
proxy_init_module(PyObject *module, pseud_state *st)
{
    st->Proxy_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &proxy_spec, NULL);
    if (st->Proxy_Type == NULL)
        return -1;
    return PyModule_AddType(module, st->Proxy_Type);
}
