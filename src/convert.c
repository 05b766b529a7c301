/* Small conversions the RPC and the SyncClient share (see convert.h). */
#include "convert.h"

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
convert_endpoint(PyObject *endpoint)
{
    if (PyUnicode_Check(endpoint))
        return PyUnicode_AsUTF8String(endpoint);
    if (PyBytes_Check(endpoint))
        return Py_NewRef(endpoint);
    PyErr_Format(PyExc_TypeError, "pseud: endpoint must be str or bytes, not %.100s",
                 Py_TYPE(endpoint)->tp_name);
    return NULL;
}

PyObject *
convert_zmq_error(const char *what)
{
    int err = zmq_errno();
    PyErr_Format(PyExc_OSError, "pseud: %s failed: %s (errno %d)", what, zmq_strerror(err), err);
    return NULL;
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
