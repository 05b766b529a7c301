/* Socket options (see sockopt.h): the SOCKOPTS table, reading and writing
 * options with the right C type, write-only options' shadows, and the
 * module's socket constants (kinds, flags, events, mechanisms, errnos). */
#include "sockopt.h"
#include "socket_object.h"
#include "convert.h"
#include "errors.h"

#include <errno.h>
#include <stdint.h>

const sockopt_def sockopt_table[N_SOCKOPTS] = {
#define X(attr, CONST, opt, type, acc) {#attr, #CONST, opt, type, acc},
    SOCKOPTS(X)
#undef X
};

static const sockopt_def *
find_option(int option)
{
    for (int i = 0; i < N_SOCKOPTS; i++)
        if (sockopt_table[i].option == option)
            return &sockopt_table[i];
    return NULL;
}


static PyObject *
get_option(SocketObject *self, int option, const sockopt_def *def)
{
    if (socket_require_open(self) < 0)
        return NULL;
    int type = def != NULL ? def->type : OPT_INT;
    if (def != NULL && def->access == ACC_W && def->type == OPT_INT) {
        Py_ssize_t idx = def - sockopt_table;
        if (self->shadow_set[idx])
            return PyLong_FromLong(self->shadow[idx]);
    }
    switch (type) {
    case OPT_INT: {
        int v = 0;
        size_t len = sizeof(v);
        if (zmq_getsockopt(self->handle, option, &v, &len) != 0)
            return errors_raise_zmq(self->st);
        if (option == ZMQ_EVENTS)
            socket_after_io(self);     /* it processed libzmq's commands: the edge is gone */
        return PyLong_FromLong(v);
    }
    case OPT_INT64: {
        int64_t v = 0;
        size_t len = sizeof(v);
        if (zmq_getsockopt(self->handle, option, &v, &len) != 0)
            return errors_raise_zmq(self->st);
        return PyLong_FromLongLong((long long)v);
    }
    case OPT_KEY: {
        char buf[41];
        size_t len = sizeof(buf);
        if (zmq_getsockopt(self->handle, option, buf, &len) != 0)
            return errors_raise_zmq(self->st);
        if (len > 0 && buf[len - 1] == '\0')
            len--;
        return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    }
    default: {   /* OPT_BYTES, OPT_STR */
        char buf[4096];
        size_t len = sizeof(buf);
        if (zmq_getsockopt(self->handle, option, buf, &len) != 0)
            return errors_raise_zmq(self->st);
        if (type == OPT_STR && len > 0 && buf[len - 1] == '\0')
            len--;
        return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    }
    }
}

static int
set_option(SocketObject *self, int option, const sockopt_def *def, PyObject *value)
{
    if (socket_require_open(self) < 0)
        return -1;
    int type;
    if (def != NULL)
        type = def->type;
    else if (PyLong_Check(value))
        type = OPT_INT;
    else
        type = OPT_BYTES;
    int rc;
    if (type == OPT_INT || type == OPT_INT64) {
        if (!PyLong_Check(value)) {
            PyErr_Format(PyExc_TypeError, "option %d takes an int, not %.100s",
                         option, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (type == OPT_INT) {
            int v = convert_int(value);
            if (v == -1 && PyErr_Occurred())
                return -1;
            rc = zmq_setsockopt(self->handle, option, &v, sizeof(v));
            if (rc == 0 && def != NULL && def->access == ACC_W) {
                Py_ssize_t idx = def - sockopt_table;
                self->shadow[idx] = v;
                self->shadow_set[idx] = 1;
            }
        }
        else {
            long long v = PyLong_AsLongLong(value);
            if (v == -1 && PyErr_Occurred())
                return -1;
            int64_t v64 = (int64_t)v;
            rc = zmq_setsockopt(self->handle, option, &v64, sizeof(v64));
        }
    }
    else {
        PyObject *b;
        if (PyUnicode_Check(value)) {
            b = PyUnicode_AsUTF8String(value);
        }
        else if (PyBytes_Check(value)) {
            b = Py_NewRef(value);
        }
        else if (PyObject_CheckBuffer(value)) {
            b = PyBytes_FromObject(value);
        }
        else {
            PyErr_Format(PyExc_TypeError, "option %d takes bytes or str, not %.100s",
                         option, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (b == NULL)
            return -1;
        rc = zmq_setsockopt(self->handle, option, PyBytes_AS_STRING(b),
                            (size_t)PyBytes_GET_SIZE(b));
        Py_DECREF(b);
    }
    if (rc != 0) {
        errors_raise_zmq(self->st);
        return -1;
    }
    socket_after_io(self);     /* e.g. a higher HWM may let a parked sender go */
    return 0;
}

PyObject *
sockopt_setsockopt(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "setsockopt(option, value) takes 2 arguments");
        return NULL;
    }
    int option = convert_int(args[0]);
    if (option == -1 && PyErr_Occurred())
        return NULL;
    if (set_option(SOCK(op), option, find_option(option), args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *
sockopt_getsockopt(PyObject *op, PyObject *arg)
{
    int option = convert_int(arg);
    if (option == -1 && PyErr_Occurred())
        return NULL;
    return get_option(SOCK(op), option, find_option(option));
}

static PyObject *
sock_subscribe_method(PyObject *op, PyObject *topic)
{
    if (set_option(SOCK(op), ZMQ_SUBSCRIBE, &sockopt_table[OPTIDX_subscribe], topic) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
sock_unsubscribe_method(PyObject *op, PyObject *topic)
{
    if (set_option(SOCK(op), ZMQ_UNSUBSCRIBE, &sockopt_table[OPTIDX_unsubscribe], topic) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef subscribe_def = {
    "subscribe", sock_subscribe_method, METH_O, "subscribe(topic): set ZMQ_SUBSCRIBE."};
static PyMethodDef unsubscribe_def = {
    "unsubscribe", sock_unsubscribe_method, METH_O, "unsubscribe(topic): set ZMQ_UNSUBSCRIBE."};

/* attribute access for the option table */
PyObject *
sockopt_attr_get(PyObject *op, void *closure)
{
    const sockopt_def *def = closure;
    if (def->option == ZMQ_SUBSCRIBE)
        return PyCFunction_NewEx(&subscribe_def, op, NULL);
    if (def->option == ZMQ_UNSUBSCRIBE)
        return PyCFunction_NewEx(&unsubscribe_def, op, NULL);
    return get_option(SOCK(op), def->option, def);
}

int
sockopt_attr_set(PyObject *op, PyObject *value, void *closure)
{
    const sockopt_def *def = closure;
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete socket option '%s'", def->attr);
        return -1;
    }
    if (!(def->access & ACC_W)) {
        PyErr_Format(PyExc_AttributeError, "socket option '%s' is read-only", def->attr);
        return -1;
    }
    return set_option(SOCK(op), def->option, def, value);
}


int
sockopt_init_module(PyObject *module)
{
    static const struct { const char *name; int value; } consts[] = {
        /* socket kinds */
        {"PAIR", ZMQ_PAIR}, {"PUB", ZMQ_PUB}, {"SUB", ZMQ_SUB}, {"REQ", ZMQ_REQ},
        {"REP", ZMQ_REP}, {"DEALER", ZMQ_DEALER}, {"ROUTER", ZMQ_ROUTER},
        {"PULL", ZMQ_PULL}, {"PUSH", ZMQ_PUSH}, {"XPUB", ZMQ_XPUB}, {"XSUB", ZMQ_XSUB},
        {"STREAM", ZMQ_STREAM},
        /* flags and events */
        {"DONTWAIT", ZMQ_DONTWAIT}, {"NOBLOCK", ZMQ_DONTWAIT}, {"SNDMORE", ZMQ_SNDMORE},
        {"POLLIN", ZMQ_POLLIN}, {"POLLOUT", ZMQ_POLLOUT}, {"POLLERR", ZMQ_POLLERR},
        {"MORE", ZMQ_MORE},
        /* security mechanisms (values of ZMQ_MECHANISM) */
        {"NULL", ZMQ_NULL}, {"PLAIN", ZMQ_PLAIN}, {"CURVE", ZMQ_CURVE},
        /* libzmq's own errno values */
        {"ETERM", ETERM}, {"EFSM", EFSM}, {"ENOCOMPATPROTO", ENOCOMPATPROTO},
        {"EMTHREAD", EMTHREAD}, {"EAGAIN", EAGAIN}, {"ENOTSOCK", ENOTSOCK},
        {"EHOSTUNREACH", EHOSTUNREACH}, {"EINVAL", EINVAL},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        if (PyModule_AddIntConstant(module, consts[i].name, consts[i].value) < 0)
            return -1;
    for (int i = 0; i < N_SOCKOPTS; i++)
        if (PyModule_AddIntConstant(module, sockopt_table[i].constant, sockopt_table[i].option) < 0)
            return -1;
    return 0;
}
