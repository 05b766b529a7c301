/* The one place that talks to gevent's hub (see green.h). gevent's hub,
 * loop, watchers and Waiter are compiled (Cython/libev), so calling them
 * from here runs no Python bytecode. */
#include "green.h"

#include <time.h>

int
green_ensure(pseud_state *st)
{
    if (st->gevent_Waiter != NULL)
        return 0;
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

PyObject *
green_hub(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_get_hub);
}

static PyObject *
hub_loop(pseud_state *st)
{
    PyObject *hub = green_hub(st);
    if (hub == NULL)
        return NULL;
    PyObject *loop = PyObject_GetAttrString(hub, "loop");
    Py_DECREF(hub);
    return loop;
}

int
green_run_callback(pseud_state *st, PyObject *cb, PyObject *arg)
{
    PyObject *loop = hub_loop(st);
    if (loop == NULL)
        return -1;
    PyObject *res = PyObject_CallMethod(loop, "run_callback", "OO", cb, arg);
    Py_DECREF(loop);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

PyObject *
green_waiter(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_Waiter);
}

PyObject *
green_waiter_get(PyObject *waiter)
{
    return PyObject_CallMethod(waiter, "get", NULL);
}

/* A started timer firing after `after` seconds, then every `repeat`
 * seconds when repeat > 0, calling cb() or cb(arg). */
static PyObject *
start_timer(pseud_state *st, double after, double repeat, PyObject *cb, PyObject *arg)
{
    PyObject *loop = hub_loop(st);
    if (loop == NULL)
        return NULL;
    if (after < 0)
        after = 0;
    PyObject *timer = PyObject_CallMethod(loop, "timer", "dd", after, repeat);
    Py_DECREF(loop);
    if (timer == NULL)
        return NULL;
    PyObject *res = arg == NULL
        ? PyObject_CallMethod(timer, "start", "O", cb)
        : PyObject_CallMethod(timer, "start", "OO", cb, arg);
    if (res == NULL) {
        Py_DECREF(timer);
        return NULL;
    }
    Py_DECREF(res);
    return timer;
}

PyObject *
green_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg)
{
    return start_timer(st, seconds, 0.0, cb, arg);
}

PyObject *
green_timer_repeat(pseud_state *st, double seconds, PyObject *cb)
{
    return start_timer(st, seconds, seconds, cb, NULL);
}

PyObject *
green_io_read(pseud_state *st, int fd, PyObject *cb)
{
    PyObject *io = green_io_new(st, fd);
    if (io == NULL)
        return NULL;
    if (green_watcher_start(io, cb) < 0) {
        Py_DECREF(io);
        return NULL;
    }
    return io;
}

void
green_watcher_close(PyObject *watcher)
{
    if (watcher == NULL)
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *res = PyObject_CallMethod(watcher, "stop", NULL);
    Py_XDECREF(res);
    PyErr_Clear();
    res = PyObject_CallMethod(watcher, "close", NULL);
    Py_XDECREF(res);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

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
green_timeout_exc(pseud_state *st, double seconds)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallFunction(st->gevent_Timeout, "d", seconds);
}

PyObject *
green_getcurrent(pseud_state *st)
{
    if (green_ensure(st) < 0)
        return NULL;
    return PyObject_CallNoArgs(st->gevent_getcurrent);
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

int
green_watcher_start(PyObject *watcher, PyObject *cb)
{
    PyObject *res = PyObject_CallMethod(watcher, "start", "O", cb);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

void
green_watcher_stop(PyObject *watcher)
{
    if (watcher == NULL)
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *res = PyObject_CallMethod(watcher, "stop", NULL);
    Py_XDECREF(res);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

int
green_waiter_switch(PyObject *waiter, PyObject *value)
{
    PyObject *res = PyObject_CallMethod(waiter, "switch", "O", value);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

int
green_wake_later(pseud_state *st, PyObject *waiter, PyObject *value)
{
    PyObject *sw = PyObject_GetAttrString(waiter, "switch");
    if (sw == NULL)
        return -1;
    int rc = green_run_callback(st, sw, value);
    Py_DECREF(sw);
    return rc;
}

double
green_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
