/* Future: the result of a remote call, compatible with
 * gevent.event.AsyncResult (docs/guide/calls.rst). Links are notified from the
 * hub (never inline), so set() never switches greenlets. */
#ifndef PSEUD_FUTURE_H
#define PSEUD_FUTURE_H

#include "module.h"

typedef enum { FUT_PENDING = 0, FUT_VALUE = 1, FUT_EXCEPTION = 2 } future_state_t;

typedef struct FutureObject {
    PyObject_HEAD
    future_state_t state;
    PyObject *value;        /* result when FUT_VALUE, else NULL */
    PyObject *exception;    /* exception instance when FUT_EXCEPTION */
    PyObject *traceback;    /* its traceback when set, restored at each raise
                               so that repeated get()s do not grow it */
    PyObject *link0;        /* first link, held inline: most futures have one */
    PyObject *links;        /* list of further links, or NULL */
    int notify_scheduled;   /* a notify callback is queued on the hub */
    PyObject *weakreflist;
} FutureObject;     /* rpc_calls.c extends it into PendingCall */

int future_init_module(PyObject *module, pseud_state *st);

/* A new pending future (new reference). */
PyObject *future_new(pseud_state *st);

/* Resolve; both return 0, or -1 with an exception set. Resolving a future
 * that is already resolved is a no-op returning 0 (a late reply loses). */
int future_set_result(PyObject *fut, PyObject *value);
int future_set_exception(PyObject *fut, PyObject *exc);  /* instance or class */

static inline int
future_is_pending(PyObject *fut)
{
    return ((FutureObject *)fut)->state == FUT_PENDING;
}

#endif
