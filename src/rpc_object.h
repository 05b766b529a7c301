/* The RPC object's layout and the functions its five files share. Private
 * to the core:
 *   rpc.c           the type, its lifecycle (bind/connect/start/stop) and socket
 *   rpc_context.c   the libzmq context the socket lives in (context=, the default)
 *   rpc_calls.c     outgoing calls: send_work, pending calls, deadlines, replies
 *   rpc_dispatch.c  incoming messages: the reader, plugin hooks, running calls
 *   rpc_outbox.c    getting messages out: non-blocking sends and the outbox
 *   rpc_monitor.c   connections: the socket monitor, lost peers, reconnecting */
#ifndef PSEUD_RPC_OBJECT_H
#define PSEUD_RPC_OBJECT_H

#include "module.h"
#include "convert.h"
#include "fdwatch.h"
#include "future.h"
#include "wire.h"
#include "workers.h"

#include <msgpack.h>
#include <string.h>

/* Where an RPC is in its life. Only ever moves forward. */
typedef enum {
    RPC_NEW = 0,        /* no socket yet: bind() or connect() first */
    RPC_OPEN,           /* socket set up, no reader yet (sends start it) */
    RPC_RUNNING,        /* the reader greenlet runs */
    RPC_STOPPED,        /* stop(): socket closed, calls failed; for good */
} rpc_lifecycle;

typedef struct PendingCall PendingCall;     /* rpc_calls.c */
typedef struct outbox_queue outbox_queue;   /* rpc_outbox.c */

/* Messages waiting to be sent, a queue per peer (rpc_outbox.c). */
typedef struct {
    PyObject *by_peer;          /* dict routing id -> capsule of its queue */
    outbox_queue *first;        /* the same queues, oldest first */
    Py_ssize_t size;            /* messages waiting, all queues */
} rpc_outbox;

/* What the RPC knows of one connection of its socket (rpc_monitor.c),
 * kept in an array indexed by the connection's fd. */
typedef struct {
    PyObject *routing;          /* the peer's routing id, once known, else NULL */
    PyObject *user_id;          /* its ZAP User-Id (bytes), once known, else NULL */
    int dupfd;                  /* accepted connections: our dup of the fd, or -1 */
    int live;                   /* between ACCEPTED/CONNECTED and DISCONNECTED */
    int accepted;               /* came to our bind(), not from our connect() */
    int inherited;              /* routing taken over from the fd's previous
                                 * connection, not yet heard from this one */
    unsigned heard;             /* mon_runs when a message last came on it */
    PyObject *prev_routing;     /* the fd's previous connection ended in this run
                                 * of events after a message came on the fd:
                                 * its routing and user id, for the next one */
    PyObject *prev_user_id;
} rpc_conn;

typedef struct {
    PyObject_HEAD
    pseud_state *st;
    PyObject *module;           /* keeps st alive */
    rpc_lifecycle state;
    void *sock;                 /* the ROUTER socket while OPEN or RUNNING, else NULL */
    fdwatch watch;              /* its ZMQ_FD edges, watched while RUNNING */
    PyObject *socket_obj;       /* Socket view of `sock` for plugins (not owning), or NULL */

    PyObject *user_id;          /* bytes or None */
    PyObject *peer_routing_id;  /* bytes or None */
    PyObject *registry;
    PyObject *packer;
    PyObject *proxy_to;         /* another RPC or None */
    PyObject *auth_backend;     /* plugin objects; *_noop skips calling them */
    PyObject *heartbeat_backend;
    int auth_noop, heartbeat_noop;
    int heartbeat_hook;         /* call handle_heartbeat per message (not for 'heartbeat') */
    int is_server;
    int probe_router;           /* connect() sets ZMQ_PROBE_ROUTER (off by default) */
    int has_connected;          /* connect() was called: peers may be on their way */
    void *zmq_ctx;              /* the libzmq context its socket lives in (rpc_context.c) */
    PyObject *context;          /* the pyzmq Context it lives in (kept alive), or NULL */
    PyObject *context_foreign;  /* str: why context= could not be shared, or NULL */
    double timeout;
    long long max_message_size;
    PyObject *last_endpoint;    /* str or None */
    PyObject *broker_id;        /* worker mode (connect_broker): the broker's
                                   routing id, where every message goes; else NULL */

    /* incoming (rpc_dispatch.c) */
    PyObject *reader_waiter;    /* Waiter the reader is parked on, or NULL */
    PyObject *on_ready;         /* bound builtin: the watch's callback */
    worker_pool workers;        /* greenlets running incoming calls */

    /* outgoing (rpc_calls.c): the call table */
    PyObject *future_pool;      /* dict uuid -> PendingCall (a Future) */
    PendingCall *dl_head, *dl_tail;     /* the same calls in deadline order */
    PyObject *deadline_timer;
    PyObject *on_deadline;      /* bound builtin: the deadline timer's callback */
    msgid_gen msgids;           /* uuids of the calls we send */

    /* the way out (rpc_outbox.c) */
    rpc_outbox outbox;
    PyObject *retry_timer;
    PyObject *on_retry;         /* bound builtin: the outbox timer's callback */
    double retry_at;            /* when retry_timer fires */
    msgpack_sbuffer sbuf;       /* reused for packing outgoing bodies */
    int sbuf_busy;              /* a pack function switched away mid-pack */

    /* connections (rpc_monitor.c) */
    void *mon_sock;             /* PAIR reading the ROUTER's monitor events, or NULL */
    fdwatch mon_watch;          /* its ZMQ_FD, watched while RUNNING */
    PyObject *on_monitor;       /* bound builtin: the monitor watch's callback */
    int mon_draining;           /* events being handled: no nested drain */
    int mon_held;               /* tests: the watch leaves events waiting */
    unsigned mon_runs;          /* runs of events handled to the end so far */
    int mon_prevs;              /* slots holding a prev_routing */
    rpc_conn *conns;            /* indexed by fd; nconns slots */
    int nconns;
    PyObject *endpoints;        /* list of the endpoints connect()ed (bytes) */
    PyObject *reconnect_due;    /* dict endpoint -> None: lost, libzmq not retrying */
    PyObject *reconnect_timer;
    PyObject *on_reconnect;     /* bound builtin: the reconnect timer's callback */
    PyObject *gone;             /* dict routing or user id -> why (str): peers lost */
    PyObject *lost_pending;     /* list: connections lost in this run of events */

    PyObject *dict;
    PyObject *weakreflist;
} RPCObject;

#define RPC(o) ((RPCObject *)(o))

/* ---- rpc.c */

/* 0 when the RPC has a socket, else -1 with a RuntimeError saying why. */
int rpc_require_socket(RPCObject *self);

/* Have the socket take in every pipe end libzmq's I/O thread has sent it
 * by now, so that sends to a peer whose connection ended get EHOSTUNREACH
 * (and wait in the outbox) instead of going into the dead pipe. Blocks
 * for a round trip to that thread. Never raises. */
void rpc_wait_io_thread(RPCObject *self);

/* Stop the RPC (idempotent). Never raises. */
void rpc_stop_now(RPCObject *self);

/* ---- rpc_context.c */

/* Choose the libzmq context of `self` from upstream's context= option
 * (None or pseud's Context: the default, pseud_default_context; or a pyzmq
 * Context): sets zmq_ctx, context and context_foreign. 0 / -1 with an
 * exception. */
int rpc_context_choose(RPCObject *self, PyObject *context);

/* 0, or -1 with a ValueError when `endpoint` (bytes) is inproc:// and the
 * pyzmq context given could not be shared: nothing there could reach it. */
int rpc_context_check_endpoint(RPCObject *self, PyObject *endpoint);

/* ---- rpc_calls.c */

int rpc_calls_init_module(PyObject *module, pseud_state *st);

/* A reply (OK or ERROR) to one of our calls. */
void rpc_handle_reply(RPCObject *self, PyObject *routing, PyObject *uuid, int is_error,
                      const char *body, size_t body_len);

/* Fail every pending call with ConnectionAbortedError (stop()). Never raises. */
void rpc_fail_all_calls(RPCObject *self);

/* The deadline timer's callback (METH_NOARGS, bound to the RPC). */
PyObject *rpc_on_deadline(PyObject *op, PyObject *unused);

/* Methods and slots of the type that send calls. */
PyObject *rpc_send_to(PyObject *op, PyObject *user_id);
PyObject *rpc_send_work_method(PyObject *op, PyObject *args, PyObject *kwargs);
PyObject *rpc_getattro(PyObject *op, PyObject *name);
int rpc_calls_traverse(RPCObject *self, visitproc visit, void *arg);
void rpc_calls_clear(RPCObject *self);

/* ---- rpc_dispatch.c */

/* Start the reader greenlet (and the fd watch) unless it runs. 0 / -1. */
int rpc_start_reader(RPCObject *self);

/* After any send or receive: fdwatch.c's rule, for the parked reader. */
void rpc_after_io(RPCObject *self);

/* Wake the parked reader so that it sees the RPC stopped. Never raises. */
void rpc_release_reader(RPCObject *self);

/* The fd watch's callback (METH_FASTCALL, bound to the RPC). */
PyObject *rpc_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs);

/* A worker's job: run one incoming call and send its reply (worker_run_fn). */
int rpc_run_work(void *rpc, const worker_job *job);

/* The worker greenlet's body (METH_NOARGS, bound to the RPC). */
PyObject *rpc_worker_loop(PyObject *op, PyObject *unused);

/* ---- rpc_outbox.c */
PyObject *rpc_outbox_calls_of(RPCObject *self, PyObject *peer);

/* Send [peer, '', v1, uuid, type, body] without blocking. When `steal` is
 * given and holds the body, a large body is handed to libzmq instead of
 * copied. 0 sent, 1 not now (nothing was sent), -1 with errno set. */
int rpc_try_send(RPCObject *self, const char *peer, size_t peer_len,
                 const char *uuid, size_t uuid_len, char type,
                 const char *body, size_t body_len, msgpack_sbuffer *steal);

/* The outbox's life: set up (0 / -1), emptied on stop() (never raises),
 * GC support. */
int rpc_outbox_init(RPCObject *self);
void rpc_outbox_drop_all(RPCObject *self);
int rpc_outbox_traverse(RPCObject *self, visitproc visit, void *arg);
void rpc_outbox_clear(RPCObject *self);

/* Queue a message for retries until `deadline`, behind what waits for
 * the same peer. 0 / -1. */
int rpc_outbox_push(RPCObject *self, double deadline, PyObject *future,
                    PyObject *peer, PyObject *uuid, char type, const char *body, size_t body_len);

/* Send now or queue. A peer not connected (EHOSTUNREACH) is waited for in
 * the outbox when `wait_unreachable`, else nothing is queued and 1 is
 * returned. 0 / 1 / -1 with an exception. */
int rpc_send_or_queue(RPCObject *self, PyObject *peer, PyObject *uuid, char type,
                      const char *body, size_t body_len, msgpack_sbuffer *steal,
                      double deadline, PyObject *future, int wait_unreachable);

/* Send a reply (OK or ERROR with a packed body) now, or queue it while the
 * peer's pipe is full (EAGAIN), up to a bound per peer; replies to peers
 * that are gone are dropped. Logs, never raises. */
void rpc_send_reply(RPCObject *self, PyObject *routing, PyObject *uuid, char type,
                    msgpack_sbuffer *body);

/* The outbox timer's callback (METH_NOARGS, bound to the RPC). */
PyObject *rpc_on_retry(PyObject *op, PyObject *unused);

/* Pack `obj` into the reusable buffer, or `local` while it is in use.
 * Returns the buffer holding the body, or NULL with an exception. */
msgpack_sbuffer *rpc_pack_body(RPCObject *self, PyObject *obj, msgpack_sbuffer *local);

/* The same for the body of a WORK message, (name, args, kwargs or {}),
 * packed from its parts (codec_pack_call); with name NULL, `args` is
 * packed as it is (rpc_pack_body). */
msgpack_sbuffer *rpc_pack_call(RPCObject *self, PyObject *name, PyObject *args,
                               PyObject *kwargs, msgpack_sbuffer *local);

/* rpc.send_message(frames): for plugins speaking the protocol. */
PyObject *rpc_send_message(PyObject *op, PyObject *frames);

/* ---- rpc_calls.c (continued) */

/* Fail every call sent to `routing` (not those still waiting in the
 * outbox) with PeerGoneError(why). Never raises. */
void rpc_fail_calls_to(RPCObject *self, PyObject *routing, PyObject *why);

/* ---- rpc_monitor.c */

/* Monitor the new socket (no watching yet). 0 / -1 with an exception. */
int rpc_monitor_open(RPCObject *self);

/* Start reading its events on the hub (rpc_start_reader). 0 / -1. */
int rpc_monitor_start(RPCObject *self);

/* Before the socket closes: stop monitoring, forget every connection.
 * Never raises. */
void rpc_monitor_close(RPCObject *self);

/* connect()/disconnect() of an endpoint, so that a connection lost to a
 * protocol error can be made again. 0 / -1. */
int rpc_monitor_connected(RPCObject *self, PyObject *endpoint);
void rpc_monitor_disconnected(RPCObject *self, PyObject *endpoint);
/* _hold_monitor(flag), for tests: while held, the monitor's watch leaves
 * the events waiting (as if the hub ran it after the reader); releasing
 * handles them at once. */
PyObject *rpc_monitor_hold(PyObject *op, PyObject *flag);

/* If `routing` (a routing or user id) of a peer that had connected to us
 * was lost and is not back: PeerGoneError set and -1; else 0. (Calls to a
 * peer we connect to wait in the outbox: libzmq connects again.) */
int rpc_monitor_check_gone(RPCObject *self, PyObject *routing);

/* Slow path of rpc_conn_seen. Never raises. */
void rpc_conn_learn(RPCObject *self, int fd, const char *routing, size_t len,
                    const char *user_id);

/* A message came from `routing` on connection `fd`: remember who is at
 * the other end of it. Costs a compare when nothing changed. */
static inline void
rpc_conn_seen(RPCObject *self, int fd, const char *routing, size_t len, const char *user_id)
{
    if (fd >= 0 && fd < self->nconns) {
        rpc_conn *c = &self->conns[fd];
        PyObject *known = c->routing;
        if (known != NULL && (size_t)PyBytes_GET_SIZE(known) == len
            && memcmp(PyBytes_AS_STRING(known), routing, len) == 0) {
            c->heard = self->mon_runs;
            return;
        }
    }
    rpc_conn_learn(self, fd, routing, len, user_id);
}

int rpc_monitor_traverse(RPCObject *self, visitproc visit, void *arg);
void rpc_monitor_clear(RPCObject *self);

#endif
