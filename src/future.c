/* Future: the result of a remote call, a drop-in for
 * gevent.event.AsyncResult.
 *
 * Design notes
 * - Links are one-shot (as in gevent's _AbstractLinkable): each is removed
 *   from the future just before it is called. They are never called from
 *   set(): becoming ready with links queues ONE notify callback on the hub
 *   (notify_scheduled), and the hub calls every link with the future.
 * - The first link is held inline (link0); further ones go to a list. link0,
 *   when present, is always the oldest link, so popping link0 first and then
 *   the head of the list keeps registration order.
 * - Blocking (get/wait) rawlinks a gevent Waiter's bound switch and parks
 *   on the waiter (green_park, with the timeout). Whatever wakes it
 *   (notify, timeout, an exception thrown in), the link is removed before
 *   returning.
 * - Resolving an already resolved future is a no-op.
 * - Raising the stored exception raises the same instance each time.
 * - Functions that can be on the stack when a greenlet switches are marked
 *   GREEN_SWITCHES (see green.h: no ASan redzones in those frames).
 */
#include "future.h"
#include "green.h"

#include <structmember.h>

#define FUT(o) ((FutureObject *)(o))

/* ------------------------------------------------------------------ */
/* links                                                               */

static Py_ssize_t
links_count(FutureObject *self)
{
    Py_ssize_t n = self->link0 != NULL ? 1 : 0;
    if (self->links != NULL)
        n += PyList_GET_SIZE(self->links);
    return n;
}

/* Append a link (new strong reference taken). 0 / -1. */
static int
links_add(FutureObject *self, PyObject *cb)
{
    if (self->link0 == NULL
        && (self->links == NULL || PyList_GET_SIZE(self->links) == 0)) {
        self->link0 = Py_NewRef(cb);
        return 0;
    }
    if (self->links == NULL) {
        self->links = PyList_New(0);
        if (self->links == NULL)
            return -1;
    }
    return PyList_Append(self->links, cb);
}

/* Remove the oldest link; returns it (new reference) or NULL if none.
 * Never raises. */
static PyObject *
links_pop_first(FutureObject *self)
{
    if (self->link0 != NULL) {
        PyObject *cb = self->link0;
        self->link0 = NULL;
        return cb;
    }
    if (self->links == NULL || PyList_GET_SIZE(self->links) == 0)
        return NULL;
    PyObject *cb = Py_NewRef(PyList_GET_ITEM(self->links, 0));
    if (PyList_SetSlice(self->links, 0, 1, NULL) < 0) {
        /* cannot fail for a valid slice of a list; be defensive anyway */
        PyErr_Clear();
        Py_DECREF(cb);
        return NULL;
    }
    return cb;
}

/* Remove the first link that is `cb` (identity) or, if use_eq, equal to
 * it (as list.remove does: bound methods compare equal). Returns 1 if
 * removed, 0 if absent, -1 on error (only possible with use_eq). */
static int
links_remove(FutureObject *self, PyObject *cb, int use_eq)
{
    /* identity first: cheap and never raises */
    if (self->link0 == cb) {
        Py_CLEAR(self->link0);
        return 1;
    }
    if (self->links != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(self->links); i++) {
            if (PyList_GET_ITEM(self->links, i) == cb)
                return PyList_SetSlice(self->links, i, i + 1, NULL) < 0 ? -1 : 1;
        }
    }
    if (!use_eq)
        return 0;
    if (self->link0 != NULL) {
        PyObject *l0 = Py_NewRef(self->link0);
        int eq = PyObject_RichCompareBool(l0, cb, Py_EQ);
        Py_DECREF(l0);
        if (eq < 0)
            return -1;
        if (eq && self->link0 == l0) {
            Py_CLEAR(self->link0);
            return 1;
        }
    }
    if (self->links != NULL) {
        PyObject *links = Py_NewRef(self->links);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(links); i++) {
            PyObject *item = Py_NewRef(PyList_GET_ITEM(links, i));
            int eq = PyObject_RichCompareBool(item, cb, Py_EQ);
            if (eq != 0) {
                int rc = -1;
                /* the comparison may have run code that mutated the list */
                if (eq > 0 && i < PyList_GET_SIZE(links)
                    && PyList_GET_ITEM(links, i) == item)
                    rc = PyList_SetSlice(links, i, i + 1, NULL) < 0 ? -1 : 1;
                else if (eq > 0)
                    rc = 0;
                Py_DECREF(item);
                Py_DECREF(links);
                return rc;
            }
            Py_DECREF(item);
        }
        Py_DECREF(links);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* notification from the hub                                           */

/* A link raised: report it as gevent reports failing callbacks. */
GREEN_SWITCHES static void
report_link_error(pseud_state *st, PyObject *cb, PyObject *fut)
{
    PyObject *context = PyTuple_Pack(2, cb, fut);
    green_report_error(st, context != NULL ? context : Py_None);
    Py_XDECREF(context);
}

/* Called by the hub with the future: call the links present now, each
 * once, removing each before calling it. Links added meanwhile schedule
 * their own notify (notify_scheduled is cleared first). Never raises. */
GREEN_SWITCHES static PyObject *
future_notify_cb(PyObject *Py_UNUSED(unused), PyObject *arg)
{
    FutureObject *self = FUT(arg);
    pseud_state *st = pseud_state_of(arg);
    if (st == NULL)
        return NULL;
    Py_INCREF(self);
    self->notify_scheduled = 0;
    Py_ssize_t n = links_count(self);
    for (Py_ssize_t i = 0; i < n && self->state != FUT_PENDING; i++) {
        PyObject *cb = links_pop_first(self);
        if (cb == NULL)
            break;
        PyObject *res = PyObject_CallOneArg(cb, arg);
        if (res == NULL)
            report_link_error(st, cb, arg);
        Py_XDECREF(res);
        Py_DECREF(cb);
    }
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static PyMethodDef notify_def = {
    "_future_notify", future_notify_cb, METH_O,
    "Call the links of a ready future (run by the hub).",
};

/* Queue the notify callback if the future is ready, has links and none
 * is queued yet. 0 / -1. */
static int
schedule_notify(FutureObject *self)
{
    if (self->notify_scheduled || self->state == FUT_PENDING
        || links_count(self) == 0)
        return 0;
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return -1;
    /* one callable for every notify, made once (it has no self): not a
     * new builtin object per resolved future */
    static PyObject *notify_cb;
    if (notify_cb == NULL && (notify_cb = PyCFunction_New(&notify_def, NULL)) == NULL)
        return -1;
    int rc = green_run_soon(st, notify_cb, (PyObject *)self);
    if (rc == 0)
        self->notify_scheduled = 1;
    return rc;
}

/* ------------------------------------------------------------------ */
/* C API                                                               */

static PyObject *
future_alloc(PyTypeObject *type)
{
    /* tp_alloc zeroes the object (PENDING, no links) and tracks it for
     * the GC */
    return type->tp_alloc(type, 0);
}

PyObject *
future_new(pseud_state *st)
{
    return future_alloc(st->Future_Type);
}

int
future_set_result(PyObject *fut, PyObject *value)
{
    FutureObject *self = FUT(fut);
    if (self->state != FUT_PENDING)
        return 0;
    self->value = Py_NewRef(value);
    self->state = FUT_VALUE;
    return schedule_notify(self);
}

/* Apply the traceback of an exc_info-like triple to exc, if it has one. */
static void
apply_exc_info(PyObject *exc, PyObject *exc_info)
{
    if (exc_info == NULL || !PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) < 3)
        return;
    PyObject *tb = PyTuple_GET_ITEM(exc_info, 2);
    if (PyTraceBack_Check(tb))
        PyException_SetTraceback(exc, tb);
}

static int
set_exception_impl(FutureObject *self, PyObject *exc, PyObject *exc_info)
{
    if (self->state != FUT_PENDING)
        return 0;
    PyObject *inst;
    if (PyExceptionClass_Check(exc)) {
        inst = PyObject_CallNoArgs(exc);
        if (inst == NULL)
            return -1;
        if (!PyExceptionInstance_Check(inst)) {
            PyErr_Format(PyExc_TypeError,
                         "calling %R should have returned an instance of "
                         "BaseException, not %.200s", exc, Py_TYPE(inst)->tp_name);
            Py_DECREF(inst);
            return -1;
        }
    }
    else if (PyExceptionInstance_Check(exc)) {
        inst = Py_NewRef(exc);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must derive from BaseException, not %.200s",
                     Py_TYPE(exc)->tp_name);
        return -1;
    }
    /* instantiating may have run code that resolved the future */
    if (self->state != FUT_PENDING) {
        Py_DECREF(inst);
        return 0;
    }
    apply_exc_info(inst, exc_info);
    self->exception = inst;
    self->traceback = PyException_GetTraceback(inst);   /* new ref or NULL */
    self->state = FUT_EXCEPTION;
    return schedule_notify(self);
}

int
future_set_exception(PyObject *fut, PyObject *exc)
{
    return set_exception_impl(FUT(fut), exc, NULL);
}

/* ------------------------------------------------------------------ */
/* waiting                                                             */

/* The outcome of a ready future: the value (new ref) or NULL with the
 * stored exception raised (the same instance every time). */
static PyObject *
future_outcome(FutureObject *self)
{
    if (self->state == FUT_VALUE)
        return Py_NewRef(self->value);
    PyException_SetTraceback(self->exception, self->traceback ? self->traceback : Py_None);
    PyErr_SetObject((PyObject *)Py_TYPE(self->exception), self->exception);
    return NULL;
}

/* Block the current greenlet until the future is ready or `timeout`
 * (None: forever) elapses. 1 ready, 0 timed out, -1 error (e.g. an
 * exception thrown into the greenlet). Never leaves a link behind. */
GREEN_SWITCHES static int
future_block(FutureObject *self, PyObject *timeout)
{
    if (self->state != FUT_PENDING)
        return 1;
    double seconds = 0.0;
    if (timeout != NULL && timeout != Py_None) {
        seconds = PyFloat_AsDouble(timeout);
        if (seconds == -1.0 && PyErr_Occurred())
            return -1;
    }
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return -1;
    PyObject *waiter = green_waiter(st);
    if (waiter == NULL)
        return -1;
    PyObject *sw = green_waiter_switcher(waiter);
    if (sw == NULL) {
        Py_DECREF(waiter);
        return -1;
    }
    int rc = links_add(self, sw);
    if (rc == 0) {
        /* a negative timeout is an immediate one, as in gevent */
        int timed = timeout != NULL && timeout != Py_None;
        rc = green_park(st, waiter, sw, !timed ? -1.0 : seconds < 0 ? 0.0 : seconds);
        links_remove(self, sw, 0);   /* identity: cannot raise */
    }
    Py_DECREF(sw);
    Py_DECREF(waiter);
    if (rc < 0)
        return -1;
    return self->state != FUT_PENDING;
}

static PyObject *
raise_timeout(FutureObject *self, double seconds)
{
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return NULL;
    PyObject *exc = green_timeout_exc(st, seconds);
    if (exc == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

GREEN_SWITCHES static PyObject *
future_get_impl(FutureObject *self, int block, PyObject *timeout)
{
    if (self->state != FUT_PENDING)
        return future_outcome(self);
    if (!block)
        return raise_timeout(self, 0.0);
    int rc = future_block(self, timeout);
    if (rc < 0)
        return NULL;
    if (rc == 0) {
        /* only a finite wait times out: timeout is a number, parsed already */
        double seconds = PyFloat_AsDouble(timeout);
        PyErr_Clear();
        return raise_timeout(self, seconds);
    }
    return future_outcome(self);
}

/* ------------------------------------------------------------------ */
/* Python methods                                                      */

static PyObject *
future_set(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", NULL};
    PyObject *value = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:set", kwlist, &value))
        return NULL;
    if (future_set_result(self, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
future_set_exception_meth(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"exception", "exc_info", NULL};
    PyObject *exc, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:set_exception", kwlist,
                                     &exc, &exc_info))
        return NULL;
    if (set_exception_impl(FUT(self), exc, exc_info) < 0)
        return NULL;
    Py_RETURN_NONE;
}

GREEN_SWITCHES static PyObject *
future_get(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"block", "timeout", NULL};
    int block = 1;
    PyObject *timeout = Py_None;
    /* get() with no arguments, the common case, skips the argument parser
     * (~300 instructions a call, callgrind) */
    if (PyTuple_GET_SIZE(args) == 0 && (kwds == NULL || PyDict_GET_SIZE(kwds) == 0))
        return future_get_impl(FUT(self), block, timeout);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO:get", kwlist, &block, &timeout))
        return NULL;
    return future_get_impl(FUT(self), block, timeout);
}

GREEN_SWITCHES static PyObject *
future_get_nowait(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return future_get_impl(FUT(self), 0, Py_None);
}

GREEN_SWITCHES static PyObject *
future_result(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:result", kwlist, &timeout))
        return NULL;
    return future_get_impl(FUT(self), 1, timeout);
}

GREEN_SWITCHES static PyObject *
future_wait(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:wait", kwlist, &timeout))
        return NULL;
    if (future_block(FUT(self), timeout) < 0)
        return NULL;
    if (FUT(self)->state == FUT_VALUE)
        return Py_NewRef(FUT(self)->value);
    Py_RETURN_NONE;
}

static PyObject *
future_ready(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(FUT(self)->state != FUT_PENDING);
}

static PyObject *
future_successful(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(FUT(self)->state == FUT_VALUE);
}

static PyObject *
future_false(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_FALSE;
}

static PyObject *
future_rawlink(PyObject *self, PyObject *cb)
{
    if (!PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError, "Expected callable: %R", cb);
        return NULL;
    }
    if (links_add(FUT(self), cb) < 0)
        return NULL;
    if (schedule_notify(FUT(self)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
future_unlink(PyObject *self, PyObject *cb)
{
    if (links_remove(FUT(self), cb, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
future_call(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"source", NULL};
    PyObject *source;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:__call__", kwlist, &source))
        return NULL;
    PyObject *ok = PyObject_CallMethod(source, "successful", NULL);
    if (ok == NULL)
        return NULL;
    int truth = PyObject_IsTrue(ok);
    Py_DECREF(ok);
    if (truth < 0)
        return NULL;
    int rc;
    if (truth) {
        PyObject *value = PyObject_GetAttrString(source, "value");
        if (value == NULL)
            return NULL;
        rc = future_set_result(self, value);
        Py_DECREF(value);
    }
    else {
        PyObject *exc = PyObject_GetAttrString(source, "exception");
        if (exc == NULL)
            return NULL;
        /* like AsyncResult.__call__: getattr(source, 'exc_info', None) */
        PyObject *exc_info = PyObject_GetAttrString(source, "exc_info");
        if (exc_info == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                Py_DECREF(exc);
                return NULL;
            }
            PyErr_Clear();
        }
        rc = set_exception_impl(FUT(self), exc, exc_info);
        Py_DECREF(exc);
        Py_XDECREF(exc_info);
    }
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* properties                                                          */

static PyObject *
future_get_value(PyObject *self, void *Py_UNUSED(closure))
{
    if (FUT(self)->state == FUT_VALUE)
        return Py_NewRef(FUT(self)->value);
    Py_RETURN_NONE;
}

static PyObject *
future_get_exception(PyObject *self, void *Py_UNUSED(closure))
{
    if (FUT(self)->state == FUT_EXCEPTION)
        return Py_NewRef(FUT(self)->exception);
    Py_RETURN_NONE;
}

static PyObject *
future_get_exc_info(PyObject *self, void *Py_UNUSED(closure))
{
    if (FUT(self)->state != FUT_EXCEPTION)
        return PyTuple_New(0);
    PyObject *exc = FUT(self)->exception;
    PyObject *tb = PyException_GetTraceback(exc);
    PyObject *res = PyTuple_Pack(3, (PyObject *)Py_TYPE(exc), exc,
                                 tb != NULL ? tb : Py_None);
    Py_XDECREF(tb);
    return res;
}

/* ------------------------------------------------------------------ */
/* type slots                                                          */

static PyObject *
future_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    /* subclasses may take arguments in their own __init__ */
    if (type == st->Future_Type
        && (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0))) {
        PyErr_SetString(PyExc_TypeError, "Future() takes no arguments");
        return NULL;
    }
    return future_alloc(type);
}

static int
future_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(FUT(self)->value);
    Py_VISIT(FUT(self)->exception);
    Py_VISIT(FUT(self)->traceback);
    Py_VISIT(FUT(self)->link0);
    Py_VISIT(FUT(self)->links);
    return 0;
}

static int
future_clear(PyObject *self)
{
    Py_CLEAR(FUT(self)->value);
    Py_CLEAR(FUT(self)->exception);
    Py_CLEAR(FUT(self)->traceback);
    Py_CLEAR(FUT(self)->link0);
    Py_CLEAR(FUT(self)->links);
    return 0;
}

static void
future_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (FUT(self)->weakreflist != NULL)
        PyObject_ClearWeakRefs(self);
    future_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
future_repr(PyObject *self)
{
    FutureObject *f = FUT(self);
    const char *name = Py_TYPE(self)->tp_name;
    Py_ssize_t nlinks = links_count(f);
    if (f->state == FUT_PENDING)
        return PyUnicode_FromFormat("<%s at %p pending links=%zd>", name, self, nlinks);
    int rc = Py_ReprEnter(self);
    if (rc < 0)
        return NULL;
    if (rc > 0)
        return PyUnicode_FromFormat("<%s at %p ...>", name, self);
    PyObject *res = f->state == FUT_VALUE
        ? PyUnicode_FromFormat("<%s at %p value=%R links=%zd>", name, self, f->value, nlinks)
        : PyUnicode_FromFormat("<%s at %p exception=%R links=%zd>", name, self,
                               f->exception, nlinks);
    Py_ReprLeave(self);
    return res;
}

static PyMethodDef future_methods[] = {
    {"set", (PyCFunction)(void (*)(void))future_set, METH_VARARGS | METH_KEYWORDS,
     "set($self, /, value=None)\n--\n\nResolve with a value and wake the waiters."},
    {"set_exception", (PyCFunction)(void (*)(void))future_set_exception_meth,
     METH_VARARGS | METH_KEYWORDS,
     "set_exception($self, /, exception, exc_info=None)\n--\n\nResolve with an exception "
     "(an instance, or a class to instantiate)."},
    {"get", (PyCFunction)(void (*)(void))future_get, METH_VARARGS | METH_KEYWORDS,
     "get($self, /, block=True, timeout=None)\n--\n\nThe value, or raise the exception; "
     "raises gevent.Timeout if not ready in time."},
    {"get_nowait", future_get_nowait, METH_NOARGS, "get_nowait($self, /)\n--\n\nget(block=False)."},
    {"result", (PyCFunction)(void (*)(void))future_result, METH_VARARGS | METH_KEYWORDS,
     "result($self, /, timeout=None)\n--\n\nget(timeout=timeout)."},
    {"wait", (PyCFunction)(void (*)(void))future_wait, METH_VARARGS | METH_KEYWORDS,
     "wait($self, /, timeout=None)\n--\n\nBlock until ready or timeout; return the value (None "
     "if not ready or failed)."},
    {"ready", future_ready, METH_NOARGS, "ready($self, /)\n--\n\nTrue once resolved."},
    {"done", future_ready, METH_NOARGS, "done($self, /)\n--\n\nready()."},
    {"successful", future_successful, METH_NOARGS, "successful($self, /)\n--\n\nTrue if resolved with a value."},
    {"cancel", future_false, METH_NOARGS, "cancel($self, /)\n--\n\nCannot be cancelled: returns False."},
    {"cancelled", future_false, METH_NOARGS, "cancelled($self, /)\n--\n\nAlways False."},
    {"rawlink", future_rawlink, METH_O,
     "rawlink($self, callback, /)\n--\n\nCall callback(self) from the hub once ready."},
    {"link", future_rawlink, METH_O, "link($self, callback, /)\n--\n\nSame as rawlink()."},
    {"unlink", future_unlink, METH_O, "unlink($self, callback, /)\n--\n\nRemove a link if present."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef future_getset[] = {
    {"value", future_get_value, NULL, "The value if successful, else None.", NULL},
    {"exception", future_get_exception, NULL, "The exception if failed, else None.", NULL},
    {"exc_info", future_get_exc_info, NULL,
     "(type, exception, traceback) if failed, else ().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef future_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(FutureObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot future_slots[] = {
    {Py_tp_doc, "Future()\n--\n\nA future result compatible with gevent.event.AsyncResult."},
    {Py_tp_new, future_tp_new},
    {Py_tp_dealloc, future_dealloc},
    {Py_tp_traverse, future_traverse},
    {Py_tp_clear, future_clear},
    {Py_tp_repr, future_repr},
    {Py_tp_call, future_call},
    {Py_tp_methods, future_methods},
    {Py_tp_getset, future_getset},
    {Py_tp_members, future_members},
    {0, NULL},
};

static PyType_Spec future_spec = {
    .name = "pseud._pseud.Future",
    .basicsize = sizeof(FutureObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = future_slots,
};

int
future_init_module(PyObject *module, pseud_state *st)
{
    st->Future_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &future_spec, NULL);
    if (st->Future_Type == NULL)
        return -1;
    return PyModule_AddType(module, st->Future_Type);
}
