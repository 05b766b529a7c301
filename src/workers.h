/* Worker pool: reusable greenlets that run incoming calls.
 *
 * Every call still runs in a greenlet of its own (it may block
 * cooperatively), but greenlets are kept and reused: a fresh greenlet per
 * call costs CPython a new frame stack (an mmap/munmap pair) each time,
 * which dominated the server's profile. Idle workers park on a Waiter;
 * a new one is spawned only when every worker is busy.
 *
 * A worker runs queued jobs one after another without switching while
 * they do not block. Only one worker at a time is being woken: a batch of
 * 100 pipelined calls used to wake (or, with the idle list empty, spawn)
 * a worker per call: the server spent 32,700 instructions per pipelined
 * call, 16,600 without (bench/callgrind_calls.py). Now the first worker
 * takes the batch, and the one woken after it finds the queue empty, or
 * takes over if a call blocks.
 *
 * The pool knows nothing of the RPC: its owner gives it a C function that
 * runs one job (rpc_dispatch.c: rpc_run_work) and a callable that starts a
 * worker greenlet (which calls workers_loop). */
#ifndef PSEUD_WORKERS_H
#define PSEUD_WORKERS_H

#include "module.h"

#define WORKERS_MAX_IDLE 16     /* idle workers kept; more exit when done */

/* One incoming call: where the reply goes, the call's id, the caller's
 * user id, the RPCCallable to run with its arguments (tuple) and keyword
 * arguments (dict). In the pool, the job owns these references. */
typedef struct {
    PyObject *routing, *uuid, *user_id, *callable, *args, *kwargs;
} worker_job;

/* Run one job; the job's references stay the caller's. Returns 0, or -1
 * with an exception: an Exception is logged and the worker goes on, any
 * other (GreenletExit...) ends the worker. */
typedef int (*worker_run_fn)(void *owner, const worker_job *job);

typedef struct {
    worker_job *jobs;           /* ring buffer of queued jobs (owned) */
    Py_ssize_t head, count, capacity;
    PyObject *idle;             /* list of the Waiters idle workers park on */
    Py_ssize_t workers;         /* live worker greenlets */
    Py_ssize_t starting;        /* workers woken or spawned that have not
                                 * taken a job yet (may over-count after a
                                 * kill: reset whenever a worker goes idle) */
    int closed;
    worker_run_fn run;          /* runs one job... */
    void *owner;                /* ...of this owner (borrowed: the pool lives in it) */
    PyObject *loop;             /* callable starting a worker: calls workers_loop */
} worker_pool;

/* Set up an empty pool; `loop` is kept (new ref). 0 / -1. */
int workers_init(worker_pool *pool, worker_run_fn run, void *owner, PyObject *loop);

/* Queue a job (its references are taken as new ones) and wake or start a
 * worker. 0 / -1. */
int workers_submit(pseud_state *st, worker_pool *pool, const worker_job *job);

/* Body of a worker greenlet: run jobs until the pool closes or enough
 * workers are idle. Returns None, or NULL if the greenlet was killed. */
PyObject *workers_loop(pseud_state *st, worker_pool *pool);

/* Drop queued jobs and let idle workers exit. Never raises. */
void workers_close(pseud_state *st, worker_pool *pool);

int workers_traverse(worker_pool *pool, visitproc visit, void *arg);
void workers_clear(worker_pool *pool);

#endif
