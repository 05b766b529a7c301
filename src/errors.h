/* One way to fail: every libzmq failure anywhere in the extension becomes
 * a ZMQError (Again for EAGAIN), raised by the functions below; and one
 * way to keep a pending exception across code that may clear it. */
#ifndef PSEUD_ERRORS_H
#define PSEUD_ERRORS_H

#include "module.h"

/* Create ZMQError and Again and add them to the module (module exec). */
int errors_init_module(PyObject *module, pseud_state *st);

/* Raise ZMQError(err, libzmq's message) -- Again when err is EAGAIN --
 * and return NULL. Capture zmq_errno() before any Python call: one may
 * overwrite it. */
PyObject *errors_raise(pseud_state *st, int err);

/* errors_raise(st, zmq_errno()). */
PyObject *errors_raise_zmq(pseud_state *st);

/* As errors_raise, with a message saying what failed:
 * "pseud: <fmt % args>: <libzmq's message>" (PyUnicode_FromFormat rules). */
PyObject *errors_raise_what(pseud_state *st, int err, const char *fmt, ...);

/* Take the pending exception out (NULL if none), to put it back later with
 * errors_restore whatever ran in between. errors_restore(NULL) leaves no
 * exception set, as PyErr_Restore(NULL, NULL, NULL) did. Python 3.12 has
 * this as one object; older versions get the same from the triple. */
static inline PyObject *
errors_save(void)
{
#if PY_VERSION_HEX >= 0x030c0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_DECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

static inline void
errors_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030c0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        PyErr_Clear();
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

#endif
