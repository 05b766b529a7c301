/* The one errno -> exception mapper, and the exceptions it raises.
 *
 * ZMQError is pyzmq's: ZMQError(errno=None, msg=None) with `.errno` and
 * `.strerror` (libzmq's message unless one is given), str() being that
 * message; Again(ZMQError) is EAGAIN. It subclasses OSError because
 * Server/Client.bind()/connect() raised OSError before they raised
 * ZMQError, and code catching OSError must keep working. The classes are
 * C heap types deriving from OSError: OSError stores errno and strerror,
 * these add pyzmq's constructor, str() and repr(). */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <zmq.h>

/* ZMQError(errno=None, msg=None). As in pyzmq, a first argument that is
 * not an int is the message: ZMQError('text'). */
static int
init_with_default(PyObject *self, PyObject *args, PyObject *kwds, PyObject *default_errno)
{
    static char *kwlist[] = {"errno", "msg", NULL};
    PyObject *err = default_errno, *msg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:ZMQError", kwlist, &err, &msg))
        return -1;
    PyObject *text;
    if (err != Py_None && !PyLong_Check(err)) {
        text = msg != Py_None ? Py_NewRef(msg) : PyObject_Str(err);
        err = Py_None;
    }
    else if (msg != Py_None) {
        text = Py_NewRef(msg);
    }
    else if (err != Py_None) {
        long e = PyLong_AsLong(err);
        if (e == -1 && PyErr_Occurred())
            return -1;
        text = PyUnicode_FromString(zmq_strerror((int)e));
    }
    else {
        text = PyUnicode_FromString("unknown error");
    }
    if (text == NULL)
        return -1;
    /* OSError.__init__(errno, strerror) stores both as attributes */
    PyObject *pair = PyTuple_Pack(2, err, text);
    Py_DECREF(text);
    if (pair == NULL)
        return -1;
    int rc = ((PyTypeObject *)PyExc_OSError)->tp_init(self, pair, NULL);
    Py_DECREF(pair);
    return rc;
}

static int
zmqerror_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return init_with_default(self, args, kwds, Py_None);
}

static int
again_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *eagain = PyLong_FromLong(EAGAIN);
    if (eagain == NULL)
        return -1;
    int rc = init_with_default(self, args, kwds, eagain);
    Py_DECREF(eagain);
    return rc;
}

static PyObject *
zmqerror_str(PyObject *self)
{
    PyObject *text = PyObject_GetAttrString(self, "strerror");
    if (text == NULL)
        return NULL;
    PyObject *res = PyObject_Str(text);
    Py_DECREF(text);
    return res;
}

static PyObject *
zmqerror_repr(PyObject *self)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__name__");
    PyObject *err = name ? PyObject_GetAttrString(self, "errno") : NULL;
    PyObject *text = err ? PyObject_GetAttrString(self, "strerror") : NULL;
    PyObject *res = text ? PyUnicode_FromFormat("%U(%R, %R)", name, err, text) : NULL;
    Py_XDECREF(name);
    Py_XDECREF(err);
    Py_XDECREF(text);
    return res;
}

/* OSError's traverse, plus the type: a heap type's instances own it. */
static int
zmqerror_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return ((PyTypeObject *)PyExc_OSError)->tp_traverse(self, visit, arg);
}

/* OSError's dealloc frees the object; a heap type must also let go of
 * the reference each instance holds to it. */
static void
zmqerror_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    ((PyTypeObject *)PyExc_OSError)->tp_dealloc(self);
    Py_DECREF(tp);
}

static PyType_Slot zmqerror_slots[] = {
    {Py_tp_doc, "ZMQError(errno=None, msg=None)\n--\n\nA libzmq call failed; `errno` is its "
                "error number, `strerror` libzmq's message for it. An OSError."},
    {Py_tp_init, zmqerror_init},
    {Py_tp_str, zmqerror_str},
    {Py_tp_repr, zmqerror_repr},
    {Py_tp_traverse, zmqerror_traverse},
    {Py_tp_dealloc, zmqerror_dealloc},
    {0, NULL},
};

static PyType_Spec zmqerror_spec = {
    .name = "pseud._pseud.ZMQError",
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = zmqerror_slots,
};

static PyType_Slot again_slots[] = {
    {Py_tp_doc, "Again(errno=EAGAIN, msg=None)\n--\n\nNothing to receive / no room to send "
                "without blocking (DONTWAIT), or ZMQ_RCVTIMEO / ZMQ_SNDTIMEO expired."},
    {Py_tp_init, again_init},
    {Py_tp_traverse, zmqerror_traverse},
    {Py_tp_dealloc, zmqerror_dealloc},
    {0, NULL},
};

static PyType_Spec again_spec = {
    .name = "pseud._pseud.Again",
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = again_slots,
};

/* Raise `cls(err, text)`; text is stolen. */
static PyObject *
raise_with(pseud_state *st, int err, PyObject *text)
{
    if (text == NULL)
        return NULL;
    PyObject *cls = err == EAGAIN ? st->Again : st->ZMQError;
    PyObject *exc = PyObject_CallFunction(cls, "iO", err, text);
    Py_DECREF(text);
    if (exc != NULL) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *
errors_raise(pseud_state *st, int err)
{
    return raise_with(st, err, PyUnicode_FromString(zmq_strerror(err)));
}

PyObject *
errors_raise_zmq(pseud_state *st)
{
    return errors_raise(st, zmq_errno());
}

PyObject *
errors_raise_what(pseud_state *st, int err, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *what = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (what == NULL)
        return NULL;
    PyObject *text = PyUnicode_FromFormat("pseud: %U: %s", what, zmq_strerror(err));
    Py_DECREF(what);
    return raise_with(st, err, text);
}

int
errors_init_module(PyObject *module, pseud_state *st)
{
    st->ZMQError = PyType_FromModuleAndSpec(module, &zmqerror_spec, PyExc_OSError);
    if (st->ZMQError == NULL || PyModule_AddType(module, (PyTypeObject *)st->ZMQError) < 0)
        return -1;
    st->Again = PyType_FromModuleAndSpec(module, &again_spec, st->ZMQError);
    if (st->Again == NULL || PyModule_AddType(module, (PyTypeObject *)st->Again) < 0)
        return -1;
    return 0;
}
