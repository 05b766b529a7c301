/* Worker pool: reusable greenlets that run incoming calls.
 *
 * Every call still runs in a greenlet of its own (it may block
 * cooperatively), but greenlets are kept and reused: a fresh greenlet per
 * call costs CPython a new frame stack (an mmap/munmap pair) each time,
 * which dominated the server's profile. Idle workers park on a Waiter;
 * a new one is spawned only when every worker is busy. */
#ifndef PSEUD_WORKERS_H
#define PSEUD_WORKERS_H

#include "module.h"

#define WORKERS_MAX_IDLE 16     /* idle workers kept; more exit when done */

typedef struct {
    PyObject **jobs;            /* ring buffer of job argument tuples (owned) */
    Py_ssize_t head, count, capacity;
    PyObject *idle;             /* list of the Waiters idle workers park on */
    Py_ssize_t workers;         /* live worker greenlets */
    int closed;
    PyObject *run;              /* run(*job) executes one job */
    PyObject *loop;             /* callable starting a worker: calls workers_loop */
} worker_pool;

/* Set up an empty pool; `run` and `loop` are borrowed and kept (new refs). */
int workers_init(worker_pool *pool, PyObject *run, PyObject *loop);

/* Queue `job` (a tuple, borrowed) and wake or start a worker. 0 / -1. */
int workers_submit(pseud_state *st, worker_pool *pool, PyObject *job);

/* Body of a worker greenlet: run jobs until the pool closes or enough
 * workers are idle. Returns None, or NULL if the greenlet was killed. */
PyObject *workers_loop(pseud_state *st, worker_pool *pool);

/* Drop queued jobs and let idle workers exit. Never raises. */
void workers_close(pseud_state *st, worker_pool *pool);

int workers_traverse(worker_pool *pool, visitproc visit, void *arg);
void workers_clear(worker_pool *pool);

#endif
