/* The ZMQ_FD edge watcher shared by the RPC reader and plugin Sockets
 * (see fdwatch.c for the rule it implements). Embedded in its owner. */
#ifndef PSEUD_FDWATCH_H
#define PSEUD_FDWATCH_H

#include "module.h"

/* While watching, the socket is re-checked at least this often (seconds)
 * even if no edge comes: a safety net against a lost ZMQ_FD edge. */
#define FDWATCH_SAFETY_INTERVAL 1.0

typedef struct {
    pseud_state *st;
    void *handle;           /* the libzmq socket; NULL once closed */
    int fd;                 /* its ZMQ_FD */
    int watching;           /* io watcher and safety timer started */
    int wake_scheduled;     /* the callback is queued on the hub */
    long missed_wakeups;    /* safety-timer runs that found the socket ready */
    PyObject *io;           /* hub io watcher on fd, made on the first start */
    PyObject *safety;       /* hub repeating timer, made with `io` */
    PyObject *cb;           /* the owner's callback while watching, else NULL */
} fdwatch;

/* Watch `handle` (reads its ZMQ_FD). Nothing is started. 0, or -1 with ZMQError. */
int fdwatch_init(fdwatch *w, pseud_state *st, void *handle);

/* Have the hub call `cb` on every edge of the fd, and at least every
 * FDWATCH_SAFETY_INTERVAL. cb is the owner's callback (METH_FASTCALL); it
 * must begin with fdwatch_fired(). No-op when watching already. 0 / -1. */
int fdwatch_start(fdwatch *w, PyObject *cb);

/* Stop watching (the watchers are kept for the next start) and let go of
 * the callback: an owner that is not watched is not held by the hub.
 * Never raises. */
void fdwatch_stop(fdwatch *w);

/* Close the watchers and forget the handle: call it before the socket is
 * closed (a watcher must never outlive its fd). Never raises. */
void fdwatch_close(fdwatch *w);

/* ZMQ_EVENTS of the socket; ZMQ_POLLIN|ZMQ_POLLOUT when it cannot be read
 * (closed or failing: whoever waits then finds out by trying). Reading it
 * consumes the edge like any libzmq call: see fdwatch.c. */
int fdwatch_events(fdwatch *w);

/* THE RULE: after any libzmq call on the socket (send, recv, bind,
 * connect, options, ZMQ_EVENTS) made while someone may be parked waiting
 * for `wanted` (ZMQ_POLLIN and/or ZMQ_POLLOUT; 0: nobody), call this. If
 * the socket is ready for `wanted` and it is watched, it queues the
 * callback (with None) on the hub, since the edge that would have said so
 * may have been consumed by that call. Keeps a pending exception; never
 * raises. */
void fdwatch_after_io(fdwatch *w, int wanted);

/* First thing in the callback of an owner that reads the socket until
 * EAGAIN there instead of reading ZMQ_EVENTS (a recv that finds nothing
 * processes libzmq's commands just as ZMQ_EVENTS does, so reading
 * ZMQ_EVENTS first would only repeat that check): clears wake_scheduled
 * only. */
void fdwatch_woken(fdwatch *w);

/* First thing in the owner's callback, with its arguments: clears
 * wake_scheduled and returns fdwatch_events(). `wanted` is what the owner's
 * waiters want: a safety-timer run that finds it ready counts a missed
 * wake-up, and *missed (if not NULL) is set then. */
int fdwatch_fired(fdwatch *w, PyObject *const *args, Py_ssize_t nargs, int wanted, int *missed);

int fdwatch_traverse(fdwatch *w, visitproc visit, void *arg);
void fdwatch_clear(fdwatch *w);

#endif
