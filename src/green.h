/* The one place that talks to gevent's hub. Every blocking wait in the
 * extension goes through here: switch to the hub, never to a peer greenlet. */
#ifndef PSEUD_GREEN_H
#define PSEUD_GREEN_H

#include "module.h"

/* Marks the C functions that can be on a greenlet's stack while that
 * greenlet switches (it blocks in the hub, or runs hub callbacks that
 * switch). greenlet saves stacks with memcpy, and under AddressSanitizer
 * the redzones around locals of such frames make that copy abort; the ASan
 * build therefore also turns stack instrumentation off altogether
 * (setup.py, --param=asan-stack=0). This keeps those frames clean should
 * stack checks be turned back on. Without ASan it expands to nothing. */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define PSEUD_GREEN_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(PSEUD_GREEN_ASAN)
#  define GREEN_SWITCHES __attribute__((no_sanitize_address, noinline))
#else
#  define GREEN_SWITCHES
#endif

/* Import gevent lazily (import pseud must work before gevent is touched). */
int green_ensure(pseud_state *st);

/* Current hub (gevent.get_hub()), new reference. */
PyObject *green_hub(pseud_state *st);

/* hub.loop.run_callback(cb, arg): run cb(arg) from the hub soon. 0 / -1. */
int green_run_callback(pseud_state *st, PyObject *cb, PyObject *arg);

/* A new gevent Waiter for the current hub (new reference). */
PyObject *green_waiter(pseud_state *st);

/* waiter.get(): block this greenlet until someone (from the hub) calls
 * waiter.switch(value); returns value (new ref) or NULL if thrown into. */
PyObject *green_waiter_get(PyObject *waiter);

/* A started one-shot timer watcher calling cb(arg) after `seconds`;
 * returns the watcher (new ref; stop it with green_watcher_close). */
PyObject *green_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg);

/* A started timer calling cb() every `seconds` until closed (new ref). */
PyObject *green_timer_repeat(pseud_state *st, double seconds, PyObject *cb);

/* A started io watcher on fd for reading, calling cb() on each readiness. */
PyObject *green_io_read(pseud_state *st, int fd, PyObject *cb);

/* Stop and close a watcher; NULL is allowed. Never raises. */
void green_watcher_close(PyObject *watcher);

/* Start a raw greenlet running func(*args) from the hub soon (gevent.spawn_raw). */
int green_spawn(pseud_state *st, PyObject *func, PyObject *args);

/* Create a gevent.Timeout instance (not started) for `seconds` (new ref). */
PyObject *green_timeout_exc(pseud_state *st, double seconds);

/* greenlet.getcurrent(), new reference. */
PyObject *green_getcurrent(pseud_state *st);

/* A new io watcher on fd for reading, NOT started (new ref). Start it with
 * green_watcher_start, pause it with green_watcher_stop. */
PyObject *green_io_new(pseud_state *st, int fd);

/* (Re)start a stopped watcher calling cb() on each readiness. While
 * started the watcher holds cb; stopping it drops that reference. 0 / -1. */
int green_watcher_start(PyObject *watcher, PyObject *cb);

/* Stop a watcher without closing it (it can be started again). Keeps a
 * pending exception; never raises. NULL is allowed. */
void green_watcher_stop(PyObject *watcher);

/* waiter.switch(value) right now. Only from the hub greenlet (a watcher
 * or loop callback): the waiting greenlet runs until it switches back.
 * 0 / -1. */
int green_waiter_switch(PyObject *waiter, PyObject *value);

/* From any greenlet: have the hub call waiter.switch(value) soon. 0 / -1. */
int green_wake_later(pseud_state *st, PyObject *waiter, PyObject *value);

/* Monotonic clock in seconds. */
double green_now(void);

#endif
