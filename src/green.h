/* The one place that talks to gevent (and greenlet). Every blocking wait
 * in the extension goes through here: switch to the hub, never to a peer
 * greenlet. Grouped by purpose: set-up, waiting, waking, watchers,
 * greenlets, errors, the clock. */
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

/* ---- set-up */

/* Import gevent lazily (import pseud must work before gevent is touched). */
int green_ensure(pseud_state *st);

/* ---- waiting: the one wait primitive
 *
 * A greenlet waits on a gevent Waiter of its own: it parks in the hub
 * until someone calls the waiter's switch (from the hub), or until a
 * timeout. Futures (future_block), plugin Sockets (park), the RPC reader,
 * idle workers and the ZAP handler's pause all wait this way. */

/* A new gevent Waiter for the current hub (new reference). */
PyObject *green_waiter(pseud_state *st);

/* The waiter's bound switch (new reference): a callable that wakes it,
 * to hand out as a callback (a future's link). */
PyObject *green_waiter_switcher(PyObject *waiter);

enum { GREEN_TIMED_OUT = 0, GREEN_WOKEN = 1 };

/* Park the current greenlet on `waiter` until something switches it
 * (GREEN_WOKEN) or `seconds` pass (GREEN_TIMED_OUT; seconds < 0 waits
 * forever). `sw` is the waiter's bound switch when the caller has it
 * already, else NULL. The timer is gone when this returns. -1 with an
 * exception when thrown into (GreenletExit, gevent.Timeout...). */
int green_park(pseud_state *st, PyObject *waiter, PyObject *sw, double seconds);

/* Park the current greenlet for `seconds` (gevent.sleep). 0 / -1. */
int green_sleep(pseud_state *st, double seconds);

/* ---- waking a parked greenlet */

/* waiter.switch(value) right now. Only from the hub greenlet (a watcher
 * or loop callback): the waiting greenlet runs until it switches back.
 * 0 / -1. */
int green_waiter_switch(PyObject *waiter, PyObject *value);

/* From any greenlet: have the hub call waiter.switch(value) soon. 0 / -1. */
int green_wake_later(pseud_state *st, PyObject *waiter, PyObject *value);

/* hub.loop.run_callback(cb, arg): run cb(arg) from the hub soon. 0 / -1. */
int green_run_callback(pseud_state *st, PyObject *cb, PyObject *arg);

/* A hub callback that is already running (the RPC reading a batch of
 * messages in the hub) can collect the wake-ups it causes and make them
 * itself when it is done, instead of queueing each on the loop:
 * green_batch_open, then green_run_soon (used by green_wake_later and by
 * futures) puts cb(arg) in the batch, and green_batch_flush calls them in
 * order, from the hub, before the callback returns. A wake-up then costs
 * no loop callback object and no pass of the loop's callback queue
 * (callgrind, sequential echo: see rpc_on_ready). Batches nest; a full
 * batch falls back to run_callback. One open batch per thread (a hub's). */
typedef struct green_batch {
    struct green_batch *outer;      /* the batch open before this one */
    int count;
    PyObject *cb[32], *arg[32];     /* strong references */
} green_batch;

void green_batch_open(green_batch *b);
/* Close `b` and run what it collected (errors go to the hub's
 * handle_error, like a loop callback's). Keeps a pending exception. */
GREEN_SWITCHES void green_batch_flush(pseud_state *st, green_batch *b);
/* cb(arg) from the hub soon: into the open batch, else run_callback. */
int green_run_soon(pseud_state *st, PyObject *cb, PyObject *arg);

/* ---- watchers (timers and io); stop them with green_watcher_close */

/* A started one-shot timer watcher calling cb(arg) after `seconds` (cb()
 * when arg is NULL); returns the watcher (new ref). */
PyObject *green_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg);

/* The same, for housekeeping: the timer does not keep the hub's loop
 * running (gevent.wait() returns without waiting for it). */
PyObject *green_background_timer(pseud_state *st, double seconds, PyObject *cb, PyObject *arg);

/* A repeating timer firing every `seconds`, NOT started (new ref). */
PyObject *green_timer_repeat_new(pseud_state *st, double seconds);

/* A new io watcher on fd for reading, NOT started (new ref). */
PyObject *green_io_new(pseud_state *st, int fd);

/* (Re)start a stopped watcher calling cb() -- cb(arg) when arg is not
 * NULL -- each time it fires. While started the watcher holds cb; stopping
 * it drops that reference. 0 / -1. */
int green_watcher_start(PyObject *watcher, PyObject *cb, PyObject *arg);

/* Stop a watcher without closing it (it can be started again). Keeps a
 * pending exception; never raises. NULL is allowed. */
void green_watcher_stop(PyObject *watcher);

/* Stop and close a watcher; NULL is allowed. Keeps a pending exception;
 * never raises. */
void green_watcher_close(PyObject *watcher);

/* ---- greenlets */

/* Start a raw greenlet running func(*args) from the hub soon (gevent.spawn_raw). */
int green_spawn(pseud_state *st, PyObject *func, PyObject *args);

/* greenlet.getcurrent(), new reference. */
PyObject *green_getcurrent(pseud_state *st);

/* True when `greenlet` has finished (greenlet.dead); 0 when unsure. Never raises. */
int green_is_dead(PyObject *greenlet);

/* ---- errors */

/* Create a gevent.Timeout instance (not started) for `seconds` (new ref). */
PyObject *green_timeout_exc(pseud_state *st, double seconds);

/* The exception of a call that got no reply in time (new ref, not
 * started): an instance of a class deriving from both gevent.Timeout and
 * pseud.interfaces.TimeoutError, whose str() is `message`
 * (docs/guide/calls.rst, "Timeouts"). */
PyObject *green_call_timeout_exc(pseud_state *st, double seconds, PyObject *message);

/* Report the exception being raised to the hub as gevent reports errors of
 * callbacks it runs (hub.handle_error(context, type, value, tb)); logged
 * on 'pseud' if even that fails. Clears it; never raises. */
void green_report_error(pseud_state *st, PyObject *context);

/* ---- the clock (no gevent needed: SyncClient uses it too) */

/* Monotonic clock in seconds. */
double green_now(void);

/* The same at the kernel tick's resolution (a few ms), for what runs on
 * every message and needs no precision: cheaper than green_now. */
double green_now_coarse(void);

#endif
