/* The one place that talks to gevent and greenlet (see green.h). gevent's
 * hub, loop, watchers and Waiter are compiled (Cython/libev), so calling
 * them from here runs no Python bytecode. */
#include "green.h"
#include "errors.h"

#include <time.h>

/* ------------------------------------------------------------- set-up */

/* Method names called on every call (waking, parking, callbacks), interned
 * once and called by vectorcall: PyObject_CallMethod with a C string
 * builds a str and parses a format each time (pipelined echo, callgrind:
 * -110 instructions per call on the server, -160 on the client).
 * Process-wide like the interned strings they are; set by green_ensure,
 * which every path here goes through before it can hold a waiter or a
 * watcher. */
static PyObject *str_switch, *str_get, *str_loop, *str_run_callback;
static PyObject *str_start, *str_stop, *str_close;

static int
intern_names(void)
{
    static const struct { PyObject **slot; const char *text; } names[] = {
        {&str_switch, "switch"}, {&str_get, "get"}, {&str_loop, "loop"},
        {&str_run_callback, "run_callback"}, {&str_start, "start"},
        {&str_stop, "stop"}, {&str_close, "close"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL
            && (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    }
    return 0;
}

int
green_ensure(pseud_state *st)
{
    if (st->gevent_Waiter != NULL)
        return 0;
    if (intern_names() < 0)
        return -1;
    PyObject *gevent = NULL, *waiter_mod = NULL, *greenlet = NULL;
    gevent = PyImport_ImportModule("gevent");
    if (gevent == NULL)
        goto fail;
    waiter_mod = PyImport_ImportModule("gevent._waiter");
    if (waiter_mod == NULL)
        goto fail;
    greenlet = PyImport_ImportModule("greenlet");
    if (greenlet == NULL)
        goto fail;
    st->gevent_get_hub = PyObject_GetAttrString(gevent, "get_hub");
    st->gevent_Timeout = PyObject_GetAttrString(gevent, "Timeout");
    st->gevent_spawn = PyObject_GetAttrString(gevent, "spawn_raw");
    st->gevent_getcurrent = PyObject_GetAttrString(greenlet, "getcurrent");
    st->gevent_Waiter = PyObject_GetAttrString(waiter_mod, "Waiter");
    if (st->gevent_get_hub == NULL || st->gevent_Timeout == NULL
        || st->gevent_spawn == NULL || st->gevent_getcurrent == NULL
        || st->gevent_Waiter == NULL) {
        Py_CLEAR(st->gevent_get_hub);
        Py_CLEAR(st->gevent_Timeout);
        Py_CLEAR(st->gevent_spawn);
        Py_CLEAR(st->gevent_getcurrent);
        Py_CLEAR(st->gevent_Waiter);
        goto fail;
    }
    Py_DECREF(gevent);
    Py_DECREF(waiter_mod);
    Py_DECREF(greenlet);
    return 0;
fail:
    Py_XDECREF(gevent);
    Py_XDECREF(waiter_mod);
    Py_XDECREF(greenlet);
    return -1;
}

/* The current hub (gevent.get_hub()), new reference. */
static PyObject *
hub(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_get_hub);
}

/* The current hub's loop (new reference). The last hub seen and its loop
 * are kept, so that a hub callback (every call wakes a worker or a
 * future) costs get_hub() and not also an attribute lookup on the hub
 * (with the shared notify callable of future.c, sequential echo,
 * callgrind: server 32,800 -> 32,000 instructions a call, client 35,500
 * -> 34,100). Keyed
 * by the hub itself: another thread's hub, or a new hub after destroy(),
 * replaces them. Process-wide, like the hubs. */
static PyObject *last_hub, *last_loop;

static PyObject *
hub_loop(pseud_state *st)
{
    PyObject *h = hub(st);
    if (h == NULL)
        return NULL;
    if (h != last_hub) {
        PyObject *loop = PyObject_GetAttr(h, str_loop);
        if (loop == NULL) {
            Py_DECREF(h);
            return NULL;
        }
        Py_XSETREF(last_loop, loop);
        Py_XSETREF(last_hub, Py_NewRef(h));
    }
    Py_DECREF(h);
    return Py_NewRef(last_loop);
}

/* ------------------------------------------------------------ waiting */

PyObject *
green_waiter(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_Waiter);
}

PyObject *
green_waiter_switcher(PyObject *waiter)
{
    return PyObject_GetAttr(waiter, str_switch);
}

GREEN_SWITCHES int
green_park(pseud_state *st, PyObject *waiter, PyObject *sw, double seconds)
{
    PyObject *timer = NULL, *own_sw = NULL;
    if (seconds >= 0) {
        if (sw == NULL) {
            sw = own_sw = green_waiter_switcher(waiter);
            if (sw == NULL)
                return -1;
        }
        /* the timer switches with the waiter itself: a sentinel nobody
         * else can pass, so a timeout is told apart from a wake-up */
        timer = green_timer(st, seconds, sw, waiter);
        if (timer == NULL) {
            Py_XDECREF(own_sw);
            return -1;
        }
    }
    PyObject *res = PyObject_CallMethodNoArgs(waiter, str_get);
    green_watcher_close(timer);     /* keeps a pending exception */
    Py_XDECREF(timer);
    Py_XDECREF(own_sw);
    if (res == NULL)
        return -1;
    int timed_out = res == waiter;
    Py_DECREF(res);
    return timed_out ? GREEN_TIMED_OUT : GREEN_WOKEN;
}

GREEN_SWITCHES int
green_sleep(pseud_state *st, double seconds)
{
    PyObject *waiter = green_waiter(st);
    if (waiter == NULL)
        return -1;
    int rc = green_park(st, waiter, NULL, seconds);
    Py_DECREF(waiter);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------- waking */

int
green_waiter_switch(PyObject *waiter, PyObject *value)
{
    PyObject *res = PyObject_CallMethodOneArg(waiter, str_switch, value);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

int
green_wake_later(pseud_state *st, PyObject *waiter, PyObject *value)
{
    PyObject *sw = green_waiter_switcher(waiter);
    if (sw == NULL)
        return -1;
    int rc = green_run_soon(st, sw, value);
    Py_DECREF(sw);
    return rc;
}

/* The batch open in this thread, if any (each thread has its own hub). */
static _Thread_local green_batch *open_batch;

void
green_batch_open(green_batch *b)
{
    b->outer = open_batch;
    b->count = 0;
    open_batch = b;
}

GREEN_SWITCHES void
green_batch_flush(pseud_state *st, green_batch *b)
{
    open_batch = b->outer;      /* what the callbacks schedule goes to the loop */
    if (b->count == 0)
        return;
    PyObject *saved = errors_save();
    for (int i = 0; i < b->count; i++) {
        PyObject *res = PyObject_CallOneArg(b->cb[i], b->arg[i]);
        if (res == NULL) {
            PyObject *context = PyTuple_Pack(2, b->cb[i], b->arg[i]);
            green_report_error(st, context != NULL ? context : Py_None);
            Py_XDECREF(context);
        }
        Py_XDECREF(res);
        Py_CLEAR(b->cb[i]);
        Py_CLEAR(b->arg[i]);
    }
    b->count = 0;
    errors_restore(saved);
}

int
green_run_soon(pseud_state *st, PyObject *cb, PyObject *arg)
{
    green_batch *b = open_batch;
    if (b == NULL || b->count == (int)(sizeof(b->cb) / sizeof(b->cb[0])))
        return green_run_callback(st, cb, arg);
    b->cb[b->count] = Py_NewRef(cb);
    b->arg[b->count] = Py_NewRef(arg);
    b->count++;
    return 0;
}

int
green_run_callback(pseud_state *st, PyObject *cb, PyObject *arg)
{
    PyObject *loop = hub_loop(st);
    if (loop == NULL)
        return -1;
    PyObject *args[] = {loop, cb, arg};
    PyObject *res = PyObject_VectorcallMethod(str_run_callback, args,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(loop);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* ----------------------------------------------------------- watchers */

int
green_watcher_start(PyObject *watcher, PyObject *cb, PyObject *arg)
{
    PyObject *args[] = {watcher, cb, arg};
    PyObject *res = PyObject_VectorcallMethod(str_start, args,
                                              (arg == NULL ? 2 : 3)
                                              | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* A timer firing after `after` seconds, then every `repeat` seconds when
 * repeat > 0; not started. */
static PyObject *
new_timer(pseud_state *st, double after, double repeat)
{
    PyObject *loop = hub_loop(st);
    if (loop == NULL)
        return NULL;
    PyObject *timer = PyObject_CallMethod(loop, "timer", "dd", after < 0 ? 0.0 : after, repeat);
    Py_DECREF(loop);
    return timer;
}

PyObject *
green_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg)
{
    PyObject *timer = new_timer(st, seconds, 0.0);
    if (timer != NULL && green_watcher_start(timer, cb, arg) < 0)
        Py_CLEAR(timer);
    return timer;
}

PyObject *
green_background_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg)
{
    PyObject *timer = new_timer(st, seconds, 0.0);
    if (timer != NULL && (PyObject_SetAttrString(timer, "ref", Py_False) < 0
                          || green_watcher_start(timer, cb, arg) < 0))
        Py_CLEAR(timer);
    return timer;
}

PyObject *
green_timer_repeat_new(pseud_state *st, double seconds)
{
    return new_timer(st, seconds, seconds);
}

PyObject *
green_io_new(pseud_state *st, int fd)
{
    PyObject *loop = hub_loop(st);
    if (loop == NULL)
        return NULL;
    PyObject *io = PyObject_CallMethod(loop, "io", "ii", fd, 1);
    Py_DECREF(loop);
    return io;
}

/* watcher.<method>() keeping a pending exception; never raises. */
static void
call_quietly(PyObject *watcher, PyObject *method)
{
    PyObject *saved = errors_save();
    PyObject *res = PyObject_CallMethodNoArgs(watcher, method);
    Py_XDECREF(res);
    errors_restore(saved);
}

void
green_watcher_stop(PyObject *watcher)
{
    if (watcher != NULL)
        call_quietly(watcher, str_stop);
}

void
green_watcher_close(PyObject *watcher)
{
    if (watcher == NULL)
        return;
    call_quietly(watcher, str_stop);
    call_quietly(watcher, str_close);
}

/* ----------------------------------------------------------- greenlets */

int
green_spawn(pseud_state *st, PyObject *func, PyObject *args)
{
    if (green_ensure(st) < 0)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (full == NULL)
        return -1;
    PyTuple_SET_ITEM(full, 0, Py_NewRef(func));
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *g = PyObject_Call(st->gevent_spawn, full, NULL);
    Py_DECREF(full);
    if (g == NULL)
        return -1;
    Py_DECREF(g);
    return 0;
}

PyObject *
green_getcurrent(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_getcurrent);
}

int
green_is_dead(PyObject *greenlet)
{
    PyObject *saved = errors_save();
    PyObject *dead = PyObject_GetAttrString(greenlet, "dead");
    int res = dead != NULL && PyObject_IsTrue(dead) == 1;
    Py_XDECREF(dead);
    errors_restore(saved);
    return res;
}

/* -------------------------------------------------------------- errors */

PyObject *
green_timeout_exc(pseud_state *st, double seconds)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallFunction(st->gevent_Timeout, "d", seconds);
}

/* CallTimeout.__str__: the message kept in args, else gevent's text. */
static PyObject *
call_timeout_str(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *args = PyObject_GetAttrString(self, "args");
    if (args == NULL)
        return NULL;
    if (PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 1
        && PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
        PyObject *res = Py_NewRef(PyTuple_GET_ITEM(args, 0));
        Py_DECREF(args);
        return res;
    }
    Py_DECREF(args);
    return PyObject_CallMethod(self, "_gevent_str", NULL);
}

static PyMethodDef call_timeout_str_def = {"__str__", call_timeout_str, METH_NOARGS, NULL};

/* The class, made once gevent is there: gevent.Timeout is what upstream's
 * callers catch, pseud.interfaces.TimeoutError what SyncClient raises;
 * one class lets either `except` work. It is an Exception through
 * TimeoutError (gevent.Timeout alone is a BaseException). */
static PyObject *
call_timeout_class(pseud_state *st)
{
    if (st->CallTimeout != NULL)
        return st->CallTimeout;
    PyObject *bases = PyTuple_Pack(2, st->gevent_Timeout, st->TimeoutError);
    PyObject *gevent_str = PyObject_GetAttrString(st->gevent_Timeout, "__str__");
    PyObject *dict = gevent_str == NULL ? NULL : Py_BuildValue(
        "{sssssO}", "__module__", "pseud.interfaces",
        "__doc__", "A call got no reply in time: a gevent.Timeout (not started) and a "
                   "pseud.interfaces.TimeoutError.",
        "_gevent_str", gevent_str);
    Py_XDECREF(gevent_str);
    PyObject *cls = bases != NULL && dict != NULL
        ? PyObject_CallFunction((PyObject *)&PyType_Type, "sOO", "CallTimeout", bases, dict)
        : NULL;
    Py_XDECREF(bases);
    Py_XDECREF(dict);
    if (cls == NULL)
        return NULL;
    PyObject *str = PyDescr_NewMethod((PyTypeObject *)cls, &call_timeout_str_def);
    if (str == NULL || PyObject_SetAttrString(cls, "__str__", str) < 0) {
        Py_XDECREF(str);
        Py_DECREF(cls);
        return NULL;
    }
    Py_DECREF(str);
    st->CallTimeout = cls;
    return cls;
}

PyObject *
green_call_timeout_exc(pseud_state *st, double seconds, PyObject *message)
{
    if (green_ensure(st) < 0 || call_timeout_class(st) == NULL)
        return NULL;
    PyObject *exc = PyObject_CallFunction(st->CallTimeout, "d", seconds);
    if (exc == NULL)
        return NULL;
    /* gevent's __init__ empties args: the message goes there afterwards */
    PyObject *args = PyTuple_Pack(1, message);
    if (args == NULL || PyObject_SetAttrString(exc, "args", args) < 0) {
        Py_XDECREF(args);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(args);
    return exc;
}

void
green_report_error(pseud_state *st, PyObject *context)
{
    PyObject *exc = errors_save();
    PyObject *type = exc != NULL ? (PyObject *)Py_TYPE(exc) : Py_None;
    PyObject *tb = exc != NULL ? PyException_GetTraceback(exc) : NULL;
    PyObject *h = hub(st);
    PyObject *res = NULL;
    if (h != NULL) {
        res = PyObject_CallMethod(h, "handle_error", "OOOO", context, type,
                                  exc != NULL ? exc : Py_None, tb != NULL ? tb : Py_None);
        Py_DECREF(h);
    }
    if (res == NULL) {
        PyErr_Clear();
        pseud_log(st, "error", "pseud: %R raised %R", context, exc != NULL ? exc : Py_None);
    }
    Py_XDECREF(res);
    Py_XDECREF(tb);
    Py_XDECREF(exc);
}

/* --------------------------------------------------------------- clock */

double
green_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double
green_now_coarse(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#else
    return green_now();
#endif
}
