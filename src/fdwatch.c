/* The ZMQ_FD edge watcher: how a greenlet waits for a libzmq socket
 * without blocking the hub. Used by the RPC reader (rpc_dispatch.c) and by
 * plugin Sockets (socket_io.c); this is the one place that explains it.
 *
 * libzmq's ZMQ_FD is not a readiness fd. It is edge-triggered: it becomes
 * readable when the socket's state MAY have changed, and any libzmq call
 * on the socket (zmq_send, zmq_recv, zmq_getsockopt(ZMQ_EVENTS), bind,
 * connect...) processes libzmq's pending commands and may consume that
 * edge, whoever made the call. Two consequences:
 *
 * 1. Readiness is only ever read from ZMQ_EVENTS, never inferred from the
 *    fd. The watcher's callback (run by the hub) starts with
 *    fdwatch_fired(), which reads ZMQ_EVENTS, and the owner wakes the
 *    waiters whose event is ready.
 * 2. The rule: after EVERY libzmq call on the socket made while someone
 *    may be parked on it, re-check ZMQ_EVENTS (fdwatch_after_io) and, if a
 *    waiter's event is ready, queue the callback on the hub ourselves: the
 *    call may have eaten the edge that would have woken it. A parked
 *    greenlet whose call brought it here does this once more just before
 *    it parks (its failed attempt was such a call).
 *
 * Wake-ups may be spurious: a woken greenlet retries its operation and
 * parks again if it still cannot proceed. The safety timer re-runs the
 * callback every FDWATCH_SAFETY_INTERVAL while watching, so that an edge
 * lost anyway (e.g. a plugin calling libzmq on the RPC's socket through
 * its own Socket view) costs a delay, never a hang; pyzmq's gevent layer
 * has the same net. Runs of the timer that find the socket ready are
 * counted (missed_wakeups): for plugin Sockets that is a bug the tests
 * look for.
 *
 * The timer calls cb(True), fdwatch_after_io calls cb(None), the io
 * watcher cb(): that is how fdwatch_fired tells them apart. */
#include "fdwatch.h"
#include "errors.h"
#include "green.h"

#include <zmq.h>

int
fdwatch_init(fdwatch *w, pseud_state *st, void *handle)
{
    w->st = st;
    w->handle = handle;
    w->fd = -1;
    w->watching = 0;
    w->wake_scheduled = 0;
    w->missed_wakeups = 0;
    w->io = NULL;
    w->safety = NULL;
    w->cb = NULL;
    size_t len = sizeof(w->fd);
    if (zmq_getsockopt(handle, ZMQ_FD, &w->fd, &len) != 0) {
        w->handle = NULL;
        errors_raise_what(st, zmq_errno(), "reading ZMQ_FD");
        return -1;
    }
    return 0;
}

int
fdwatch_start(fdwatch *w, PyObject *cb)
{
    if (w->watching)
        return 0;
    if (w->io == NULL) {
        w->io = green_io_new(w->st, w->fd);
        if (w->io == NULL)
            return -1;
    }
    if (w->safety == NULL) {
        w->safety = green_timer_repeat_new(w->st, FDWATCH_SAFETY_INTERVAL);
        if (w->safety == NULL)
            return -1;
    }
    if (green_watcher_start(w->io, cb, NULL) < 0)
        return -1;
    if (green_watcher_start(w->safety, cb, Py_True) < 0) {
        green_watcher_stop(w->io);
        return -1;
    }
    w->cb = Py_NewRef(cb);
    w->watching = 1;
    return 0;
}

void
fdwatch_stop(fdwatch *w)
{
    if (!w->watching)
        return;
    w->watching = 0;
    green_watcher_stop(w->io);
    green_watcher_stop(w->safety);
    Py_CLEAR(w->cb);
}

void
fdwatch_close(fdwatch *w)
{
    w->watching = 0;
    green_watcher_close(w->io);
    green_watcher_close(w->safety);
    Py_CLEAR(w->io);
    Py_CLEAR(w->safety);
    Py_CLEAR(w->cb);
    w->handle = NULL;
}

int
fdwatch_events(fdwatch *w)
{
    int events = 0;
    size_t len = sizeof(events);
    if (w->handle == NULL || zmq_getsockopt(w->handle, ZMQ_EVENTS, &events, &len) != 0)
        return ZMQ_POLLIN | ZMQ_POLLOUT;
    return events;
}

void
fdwatch_after_io(fdwatch *w, int wanted)
{
    if (wanted == 0 || w->handle == NULL || w->cb == NULL || w->wake_scheduled)
        return;
    if (!(fdwatch_events(w) & wanted))
        return;
    PyObject *saved = errors_save();
    if (green_run_callback(w->st, w->cb, Py_None) == 0) {
        w->wake_scheduled = 1;
    }
    else {
        PyErr_Clear();
        pseud_log(w->st, "error", "pseud: could not wake the greenlets waiting on a socket");
    }
    errors_restore(saved);
}

void
fdwatch_woken(fdwatch *w)
{
    w->wake_scheduled = 0;
}

int
fdwatch_fired(fdwatch *w, PyObject *const *args, Py_ssize_t nargs, int wanted, int *missed)
{
    fdwatch_woken(w);
    int events = fdwatch_events(w);
    int by_safety = nargs == 1 && args[0] == Py_True;
    int was_missed = by_safety && w->handle != NULL && (events & wanted) != 0;
    if (was_missed)
        w->missed_wakeups++;
    if (missed != NULL)
        *missed = was_missed;
    return events;
}

int
fdwatch_traverse(fdwatch *w, visitproc visit, void *arg)
{
    Py_VISIT(w->io);
    Py_VISIT(w->safety);
    Py_VISIT(w->cb);
    return 0;
}

void
fdwatch_clear(fdwatch *w)
{
    Py_CLEAR(w->io);
    Py_CLEAR(w->safety);
    Py_CLEAR(w->cb);
}
