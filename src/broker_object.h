/* The broker's layout and what its two files share. Private to the core:
 *   broker.c        the type: construction, sockets and their options,
 *                   bind/start/stop, stats, GC and the getsets
 *   broker_route.c  the hot path: routing frontend and backend messages,
 *                   the call table, worker choice, the wait queue and its
 *                   deadlines, worker liveness
 * See docs/guide/scaling.rst for what the broker does. */
#ifndef PSEUD_BROKER_OBJECT_H
#define PSEUD_BROKER_OBJECT_H

#include "module.h"
#include "fdwatch.h"

#include <stdint.h>
#include <zmq.h>

#define CHUNK 1024              /* call slots are allocated this many at a time */
#define MAX_CHUNKS 1024         /* at most a million calls held at once */
#define NIL UINT32_MAX

enum { CALL_FREE = 0, CALL_QUEUED, CALL_AT_WORKER, CALL_TO_CLIENT };

typedef struct {
    uint32_t gen;
    uint8_t state;
    int worker;                 /* AT_WORKER: the worker's slot */
    double deadline;            /* QUEUED and TO_CLIENT: when it expires */
    zmq_msg_t peer;             /* who called: client (QUEUED, AT_WORKER) or worker (TO_CLIENT) */
    zmq_msg_t uuid;             /* the caller's message id */
    zmq_msg_t body;             /* QUEUED: the WORK body */
    zmq_msg_t aux;              /* QUEUED: the caller's user id; TO_CLIENT: the client's routing id */
    uint32_t next;              /* the queue or the free list */
} bcall;

typedef struct {
    char *rid;                  /* the worker's routing id; NULL: free slot */
    size_t rid_len;
    int inflight;
    long long served;
} bworker;

typedef struct {
    PyObject_HEAD
    pseud_state *st;
    PyObject *module;
    void *front, *back, *mon;   /* mon: PAIR receiving the backend's monitor events */
    PyObject *context;          /* the pyzmq Context they live in, kept alive; or NULL */
    fdwatch wf, wb, wm;
    PyObject *front_view, *back_view;
    PyObject *on_ready, *on_monitor, *on_tick, *tick;
    PyObject *users;            /* dict user id -> client routing id (secured frontend) */
    PyObject *service_id;
    int running, closed, secured;
    int max_in_flight;
    Py_ssize_t max_queue;
    double timeout;

    bworker *workers;
    int nworkers;               /* slots, live or free */
    int rr;                     /* where the next least-loaded search starts */

    bcall *chunks[MAX_CHUNKS];
    uint32_t nslots;            /* slots allocated so far */
    uint32_t free_head;
    uint32_t q_head, q_tail;
    Py_ssize_t q_len;
    Py_ssize_t in_flight;
    int ticks, burst;
    double last_log;

    /* counters for stats() */
    long long routed, replied, rejected, expired, lost, bad_front, bad_back, anonymous,
        to_clients, joined;
} BrokerObject;

#define B(o) ((BrokerObject *)(o))

/* Re-arm the three fd watches after reading their sockets (their edges
 * fire only on a change). */
static inline void
broker_after_io(BrokerObject *b)
{
    fdwatch_after_io(&b->wf, ZMQ_POLLIN);
    fdwatch_after_io(&b->wb, ZMQ_POLLIN);
    fdwatch_after_io(&b->wm, ZMQ_POLLIN);
}

/* The hub callbacks (broker_route.c), wrapped as methods by broker_init:
 * the frontend's and backend's fd watches, the monitor's, and the tick
 * timer. */
PyObject *broker_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs);
PyObject *broker_on_monitor(PyObject *op, PyObject *const *args, Py_ssize_t nargs);
PyObject *broker_on_tick(PyObject *op, PyObject *unused);

#endif
