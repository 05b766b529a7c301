/* The RPC object's layout and the functions its four files share. Private
 * to the core:
 *   rpc.c           the type, its lifecycle (bind/connect/start/stop) and socket
 *   rpc_calls.c     outgoing calls: send_work, pending calls, deadlines, replies
 *   rpc_dispatch.c  incoming messages: the reader, plugin hooks, running calls
 *   rpc_outbox.c    getting messages out: non-blocking sends and the outbox */
#ifndef PSEUD_RPC_OBJECT_H
#define PSEUD_RPC_OBJECT_H

#include "module.h"
#include "convert.h"
#include "fdwatch.h"
#include "future.h"
#include "wire.h"
#include "workers.h"

#include <msgpack.h>

/* Where an RPC is in its life. Only ever moves forward. */
typedef enum {
    RPC_NEW = 0,        /* no socket yet: bind() or connect() first */
    RPC_OPEN,           /* socket set up, no reader yet (sends start it) */
    RPC_RUNNING,        /* the reader greenlet runs */
    RPC_STOPPED,        /* stop(): socket closed, calls failed; for good */
} rpc_lifecycle;

typedef struct PendingCall PendingCall;     /* rpc_calls.c */

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
    int is_server;
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
    PyObject *outbox;           /* list of (deadline, future|None, frames tuple) */
    PyObject *retry_timer;
    PyObject *on_retry;         /* bound builtin: the outbox timer's callback */
    double retry_interval;
    msgpack_sbuffer sbuf;       /* reused for packing outgoing bodies */
    int sbuf_busy;              /* a pack function switched away mid-pack */

    PyObject *dict;
    PyObject *weakreflist;
} RPCObject;

#define RPC(o) ((RPCObject *)(o))

/* ---- rpc.c */

/* 0 when the RPC has a socket, else -1 with a RuntimeError saying why. */
int rpc_require_socket(RPCObject *self);

/* Stop the RPC (idempotent). Never raises. */
void rpc_stop_now(RPCObject *self);

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

/* Send [peer, '', v1, uuid, type, body] without blocking. When `steal` is
 * given and holds the body, a large body is handed to libzmq instead of
 * copied. 0 sent, 1 not now (nothing was sent), -1 with errno set. */
int rpc_try_send(RPCObject *self, const char *peer, size_t peer_len,
                 const char *uuid, size_t uuid_len, char type,
                 const char *body, size_t body_len, msgpack_sbuffer *steal);

/* Queue a message for retries until `deadline`. 0 / -1. */
int rpc_outbox_push(RPCObject *self, double deadline, PyObject *future,
                    PyObject *peer, PyObject *uuid, char type, const char *body, size_t body_len);

/* Send now or queue. 0 / -1 with an exception. */
int rpc_send_or_queue(RPCObject *self, PyObject *peer, PyObject *uuid, char type,
                      const char *body, size_t body_len, msgpack_sbuffer *steal,
                      double deadline, PyObject *future);

/* Send a reply (OK or ERROR with a packed body) now, or queue it while the
 * peer's pipe is full (EAGAIN) up to a bound; replies to peers that are
 * gone are dropped. Logs, never raises. */
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

#endif
