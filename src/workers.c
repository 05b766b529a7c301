/* Worker pool: reusable greenlets running incoming calls (see workers.h). */
#include "workers.h"
#include "errors.h"
#include "green.h"

#include <string.h>

int
workers_init(worker_pool *pool, worker_run_fn run, void *owner, PyObject *loop)
{
    memset(pool, 0, sizeof(*pool));
    pool->idle = PyList_New(0);
    if (pool->idle == NULL)
        return -1;
    pool->run = run;
    pool->owner = owner;
    pool->loop = Py_NewRef(loop);
    return 0;
}

static void
job_clear(worker_job *job)
{
    Py_CLEAR(job->routing);
    Py_CLEAR(job->uuid);
    Py_CLEAR(job->user_id);
    Py_CLEAR(job->callable);
    Py_CLEAR(job->args);
    Py_CLEAR(job->kwargs);
}

static int
push_job(worker_pool *pool, const worker_job *job)
{
    if (pool->count == pool->capacity) {
        Py_ssize_t cap = pool->capacity ? pool->capacity * 2 : 16;
        worker_job *jobs = PyMem_Malloc(cap * sizeof(worker_job));
        if (jobs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < pool->count; i++)
            jobs[i] = pool->jobs[(pool->head + i) % pool->capacity];
        PyMem_Free(pool->jobs);
        pool->jobs = jobs;
        pool->head = 0;
        pool->capacity = cap;
    }
    worker_job *slot = &pool->jobs[(pool->head + pool->count) % pool->capacity];
    slot->routing = Py_NewRef(job->routing);
    slot->uuid = Py_NewRef(job->uuid);
    slot->user_id = Py_NewRef(job->user_id);
    slot->callable = Py_NewRef(job->callable);
    slot->args = Py_NewRef(job->args);
    slot->kwargs = Py_NewRef(job->kwargs);
    pool->count++;
    return 0;
}

/* Move the oldest job into *out (which then owns its references); 0 when
 * there is none. */
static int
pop_job(worker_pool *pool, worker_job *out)
{
    if (pool->count == 0)
        return 0;
    *out = pool->jobs[pool->head];
    memset(&pool->jobs[pool->head], 0, sizeof(worker_job));
    pool->head = (pool->head + 1) % pool->capacity;
    pool->count--;
    return 1;
}

static int
spawn_worker(pseud_state *st, worker_pool *pool)
{
    PyObject *noargs = PyTuple_New(0);
    if (noargs == NULL)
        return -1;
    int rc = green_spawn(st, pool->loop, noargs);
    Py_DECREF(noargs);
    if (rc == 0) {
        pool->workers++;
        pool->starting++;
    }
    return rc;
}

/* Wake one parked worker from the hub; 1 if there was one, 0 if none, -1. */
static int
wake_idle(pseud_state *st, worker_pool *pool)
{
    Py_ssize_t n = PyList_GET_SIZE(pool->idle);
    if (n == 0)
        return 0;
    PyObject *waiter = PyList_GET_ITEM(pool->idle, n - 1);
    if (green_wake_later(st, waiter, Py_None) < 0)
        return -1;     /* still parked, still on the list */
    if (PyList_SetSlice(pool->idle, n - 1, n, NULL) < 0)
        return -1;
    pool->starting++;
    return 1;
}

/* Get a worker on its way (an idle one, else a new one) unless one is
 * already: whoever starts taking jobs next runs the queue. 0 / -1. */
static int
ensure_starting(pseud_state *st, worker_pool *pool)
{
    if (pool->starting > 0)
        return 0;
    int woke = wake_idle(st, pool);
    if (woke < 0 || (woke == 0 && spawn_worker(st, pool) < 0))
        return -1;
    return 0;
}

/* A worker begins taking jobs: it is no longer on its way. */
static void
worker_started(worker_pool *pool)
{
    if (pool->starting > 0)
        pool->starting--;
}

int
workers_submit(pseud_state *st, worker_pool *pool, const worker_job *job)
{
    if (pool->closed) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: the worker pool is closed");
        return -1;
    }
    if (push_job(pool, job) < 0)
        return -1;
    if (ensure_starting(st, pool) < 0) {
        /* nobody will run it: take it back, the caller answers an error */
        pool->count--;
        Py_ssize_t tail = (pool->head + pool->count) % pool->capacity;
        job_clear(&pool->jobs[tail]);
        return -1;
    }
    return 0;
}

/* Remove `waiter` from the idle list if it is still there. */
static void
forget_idle(worker_pool *pool, PyObject *waiter)
{
    for (Py_ssize_t i = PyList_GET_SIZE(pool->idle) - 1; i >= 0; i--) {
        if (PyList_GET_ITEM(pool->idle, i) == waiter) {
            if (PyList_SetSlice(pool->idle, i, i + 1, NULL) < 0)
                PyErr_Clear();
            return;
        }
    }
}

GREEN_SWITCHES PyObject *
workers_loop(pseud_state *st, worker_pool *pool)
{
    /* One Waiter for all of this worker's parks, not a new one each time
     * (sequential echo, callgrind: server 31,505 -> 30,388 instructions).
     * It can be reused as it is: only wake_idle switches it, once per
     * park (it takes the waiter off the idle list), and only from the hub
     * after the worker has parked, so no value is ever left stored in it. */
    PyObject *waiter = NULL;
    worker_started(pool);
    for (;;) {
        worker_job job;
        while (!pool->closed && pop_job(pool, &job)) {
            /* jobs left behind get the next worker now, should this one
             * block in its call; if it does not, that worker finds the
             * queue empty and parks again */
            if (pool->count > 0 && ensure_starting(st, pool) < 0) {
                pseud_log(st, "error", "pseud: could not start a worker");
                PyErr_Clear();
            }
            int rc = pool->run(pool->owner, &job);
            job_clear(&job);
            if (rc < 0) {
                if (!PyErr_ExceptionMatches(PyExc_Exception))
                    goto killed;   /* GreenletExit and friends end this worker */
                pseud_log(st, "error", "pseud: a worker failed to run a call");
                PyErr_Clear();
            }
        }
        if (pool->closed || PyList_GET_SIZE(pool->idle) >= WORKERS_MAX_IDLE)
            break;
        if (pool->count == 0)
            pool->starting = 0;     /* heals a count left by a killed worker */
        if (waiter == NULL && (waiter = green_waiter(st)) == NULL)
            goto killed;
        if (PyList_Append(pool->idle, waiter) < 0)
            goto killed;
        int rc = green_park(st, waiter, NULL, -1.0);
        forget_idle(pool, waiter);
        if (rc < 0)
            goto killed;
        worker_started(pool);
    }
    Py_XDECREF(waiter);
    pool->workers--;
    Py_RETURN_NONE;
killed:
    Py_XDECREF(waiter);
    pool->workers--;
    /* jobs left behind still get a worker: an idle one, else a new one */
    if (!pool->closed && pool->count > 0) {
        PyObject *saved = errors_save();
        pool->starting = 0;     /* this one may have been counted: do not trust it */
        if (ensure_starting(st, pool) < 0)
            PyErr_Clear();
        errors_restore(saved);
    }
    return NULL;
}

void
workers_close(pseud_state *st, worker_pool *pool)
{
    pool->closed = 1;
    worker_job job;
    while (pop_job(pool, &job))
        job_clear(&job);
    int woke;
    while ((woke = wake_idle(st, pool)) > 0)
        ;
    if (woke < 0)
        PyErr_Clear();
}

int
workers_traverse(worker_pool *pool, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < pool->count; i++) {
        worker_job *job = &pool->jobs[(pool->head + i) % pool->capacity];
        Py_VISIT(job->routing);
        Py_VISIT(job->uuid);
        Py_VISIT(job->user_id);
        Py_VISIT(job->callable);
        Py_VISIT(job->args);
        Py_VISIT(job->kwargs);
    }
    Py_VISIT(pool->idle);
    Py_VISIT(pool->loop);
    return 0;
}

void
workers_clear(worker_pool *pool)
{
    worker_job job;
    while (pop_job(pool, &job))
        job_clear(&job);
    PyMem_Free(pool->jobs);
    pool->jobs = NULL;
    pool->capacity = pool->head = 0;
    Py_CLEAR(pool->idle);
    Py_CLEAR(pool->loop);
}
