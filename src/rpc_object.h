/* The RPC object's layout, shared by rpc.c (lifecycle, reader, dispatch,
 * deadlines) and rpc_send.c (getting messages out). Private to the core. */
#ifndef PSEUD_RPC_OBJECT_H
#define PSEUD_RPC_OBJECT_H

#include "module.h"
#include "convert.h"
#include "fdwatch.h"
#include "future.h"
#include "workers.h"

#include <msgpack.h>

#define RETRY_FIRST 0.002           /* outbox retry interval, doubling up to RETRY_MAX */
#define OUTBOX_MAX_REPLIES 1000     /* replies held for peers that do not read */

typedef struct {
    PyObject_HEAD
    pseud_state *st;
    PyObject *module;           /* keeps st alive */
    void *sock;                 /* the ROUTER socket, NULL before bind/connect and after stop */
    fdwatch watch;              /* its ZMQ_FD edges, watched while the reader runs */
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
    PyObject *future_pool;      /* dict uuid -> Future */
    PyObject *last_endpoint;    /* str or None */

    int started, stopped;
    PyObject *reader_waiter;    /* Waiter the reader is parked on, or NULL */
    PyObject *on_ready;         /* bound builtin: the watch's callback */
    PyObject *on_deadline;      /* bound builtin: the deadline timer's callback */
    PyObject *on_retry;         /* bound builtin: the outbox timer's callback */
    PyObject *run_work;         /* bound builtin: runs one call (a worker's job) */
    worker_pool workers;        /* greenlets running incoming calls */

    FutureObject *dl_head, *dl_tail;
    PyObject *deadline_timer;
    double deadline_timer_at;

    PyObject *outbox;           /* list of (deadline, future|None, frames tuple) */
    PyObject *retry_timer;
    double retry_interval;

    msgpack_sbuffer sbuf;       /* reused for packing outgoing bodies */
    int sbuf_busy;              /* a pack function switched away mid-pack */
    msgid_gen msgids;           /* uuids of the calls we send */

    PyObject *dict;
    PyObject *weakreflist;
} RPCObject;

/* ---- rpc_send.c ---- */

/* 0 when the RPC has a socket, else -1 with a RuntimeError saying why. */
int rpc_require_socket(RPCObject *self);

/* After any send or receive: wake the parked reader if input is waiting. */
void rpc_after_io(RPCObject *self);

/* Send [peer, '', v1, uuid, type, body] without blocking (see rpc_send.c).
 * 0 sent, 1 not now (nothing sent), -1 with errno set. */
int rpc_try_send(RPCObject *self, const char *peer, size_t peer_len,
             const char *uuid, size_t uuid_len, char type,
             const char *body, size_t body_len, msgpack_sbuffer *steal);

/* End a half-sent message with an empty frame; returns -1, errno kept. */
int rpc_abandon_message(void *s);

/* Queue a message for retries until `deadline`. 0 / -1. */
int rpc_outbox_push(RPCObject *self, double deadline, PyObject *future,
                PyObject *peer, PyObject *uuid, char type, const char *body, size_t body_len);

/* Send now or queue. 0 / -1 with an exception. */
int rpc_send_or_queue(RPCObject *self, PyObject *peer, PyObject *uuid, char type,
                  const char *body, size_t body_len, msgpack_sbuffer *steal,
                  double deadline, PyObject *future);

/* The outbox timer's callback (a METH_NOARGS builtin bound to the RPC). */
PyObject *rpc_on_retry(PyObject *op, PyObject *unused);

/* Pack `obj` into the reusable buffer, or `local` while it is in use. */
msgpack_sbuffer *rpc_pack_body(RPCObject *self, PyObject *obj, msgpack_sbuffer *local);

#endif
