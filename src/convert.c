/* Small conversions every part of the extension shares (see convert.h). */
#include "convert.h"
#include "errors.h"

#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zmq.h>

PyObject *
convert_identity(PyObject *value, const char *what)
{
    if (value == NULL || value == Py_None)
        return Py_NewRef(Py_None);
    if (PyBytes_Check(value))
        return Py_NewRef(value);
    if (PyUnicode_Check(value))
        return PyUnicode_AsUTF8String(value);
    PyErr_Format(PyExc_TypeError, "pseud: %s must be str or bytes, not %.100s",
                 what, Py_TYPE(value)->tp_name);
    return NULL;
}

PyObject *
convert_frame(PyObject *value, Py_ssize_t index)
{
    if (PyBytes_Check(value))
        return Py_NewRef(value);
    if (PyUnicode_Check(value))
        return PyUnicode_AsUTF8String(value);
    /* checked first: PyBytes_FromObject would also take a list of ints */
    if (PyObject_CheckBuffer(value))
        return PyBytes_FromObject(value);
    PyErr_Format(PyExc_TypeError,
                 "pseud: frame %zd must be bytes, str or a bytes-like object, not %.100s",
                 index, Py_TYPE(value)->tp_name);
    return NULL;
}

PyObject *
convert_endpoint(PyObject *endpoint)
{
    PyObject *res;
    if (PyUnicode_Check(endpoint)) {
        res = PyUnicode_AsUTF8String(endpoint);
    }
    else if (PyBytes_Check(endpoint)) {
        res = Py_NewRef(endpoint);
    }
    else {
        PyErr_Format(PyExc_TypeError, "pseud: endpoint must be str or bytes, not %.100s",
                     Py_TYPE(endpoint)->tp_name);
        return NULL;
    }
    if (res != NULL
        && memchr(PyBytes_AS_STRING(res), '\0', (size_t)PyBytes_GET_SIZE(res)) != NULL) {
        Py_DECREF(res);
        PyErr_Format(PyExc_ValueError, "pseud: endpoint %R contains a NUL character", endpoint);
        return NULL;
    }
    return res;
}

int
convert_int(PyObject *obj)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit in a C int");
        return -1;
    }
    return (int)v;
}

int
convert_timeout_ms(double seconds)
{
    return seconds * 1000 >= INT_MAX ? -1 : (int)(seconds * 1000);
}

PyObject *
convert_last_endpoint(pseud_state *st, void *zsock)
{
    char buf[1024];
    size_t len = sizeof(buf);
    if (zmq_getsockopt(zsock, ZMQ_LAST_ENDPOINT, buf, &len) != 0)
        return errors_raise_what(st, zmq_errno(), "reading ZMQ_LAST_ENDPOINT");
    /* the length counts the terminating NUL */
    return PyUnicode_DecodeUTF8(buf, len > 0 ? (Py_ssize_t)strnlen(buf, len) : 0, "replace");
}

void
msgid_init(msgid_gen *gen)
{
    gen->counter = 0;
    if (getrandom(gen->prefix, sizeof(gen->prefix), 0) == sizeof(gen->prefix))
        return;
    /* no entropy source: still unique within the process */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long p = (unsigned long long)(uintptr_t)gen
                           ^ ((unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
    memcpy(gen->prefix, &p, sizeof(gen->prefix));
}

void
msgid_next(msgid_gen *gen, unsigned char out[16])
{
    memcpy(out, gen->prefix, 8);
    unsigned long long c = ++gen->counter;
    for (int i = 15; i >= 8; i--, c >>= 8)
        out[i] = (unsigned char)(c & 0xff);
}
