/* The Socket object's layout and the internals its files share:
 * socket.c (the type, its lifecycle, bind/connect), socket_io.c (blocking
 * send/recv under gevent), sockopt.c (options). Private to them. */
#ifndef PSEUD_SOCKET_OBJECT_H
#define PSEUD_SOCKET_OBJECT_H

#include "module.h"
#include "fdwatch.h"
#include "sockopt.h"

#include <zmq.h>

typedef struct {
    PyObject_HEAD
    pseud_state *st;            /* lives as long as our type (ht_module) */
    void *handle;               /* libzmq socket; NULL once closed */
    int owned;                  /* close() calls zmq_close */
    int closed;
    fdwatch watch;              /* ZMQ_FD edges, while someone waits */
    PyObject *recv_waiters;     /* list of Waiters wanting POLLIN */
    PyObject *send_waiters;     /* list of Waiters wanting POLLOUT */
    PyObject *lock_waiters;     /* list of Waiters wanting the send side */
    PyObject *send_owner;       /* greenlet mid-way through a message, or NULL */
    int shadow[N_SOCKOPTS];     /* write-only int options as set by us */
    unsigned char shadow_set[N_SOCKOPTS];
    PyObject *weakreflist;
} SocketObject;

#define SOCK(o) ((SocketObject *)(o))

/* ---- socket.c */

/* ZMQError(ENOTSOCK) when closed; 0 when open. */
int socket_require_open(SocketObject *self);

/* ---- socket_io.c */

/* A new Socket object on `handle` (owned: close() closes it). On failure
 * the caller still owns the handle. */
SocketObject *socket_alloc(pseud_state *st, void *handle, int owned);

/* The rule of fdwatch.c for this socket: wakes its parked greenlets if
 * what they wait for is ready. Never raises. */
void socket_after_io(SocketObject *self);

/* close() wakes every parked greenlet; each then raises ZMQError(ENOTSOCK). */
void socket_wake_all(SocketObject *self);

/* Queue `n` frames as one message, parking while it cannot (plus SNDMORE
 * on the last one when `flags` has it): other greenlets' frames never
 * interleave. 0 / -1 with an exception (Again: DONTWAIT or SNDTIMEO). */
int socket_send_frames(SocketObject *self, Py_buffer *bufs, Py_ssize_t n, int flags);

/* Receive one frame into `msg` (initialised by the caller), parking while
 * none is there (unless DONTWAIT). *deadline / *have_deadline carry
 * ZMQ_RCVTIMEO's deadline across the frames of one message. 0 / -1. */
int socket_recv_frame(SocketObject *self, zmq_msg_t *msg, int flags,
                      double *deadline, int *have_deadline);

/* A whole message as a list of bytes (or Frames when !copy). New ref. */
PyObject *socket_recv_message(SocketObject *self, int flags, int copy);

/* Wait until one of `flags` (POLLIN/POLLOUT) is ready or `deadline`
 * (green_now() time, < 0: none) passes: the ready events (0 on timeout),
 * or -1 with an exception. */
int socket_wait_events(SocketObject *self, int flags, double deadline);

/* ---- frame.c */

/* The Python value of a received frame: bytes, or a Frame taking over the
 * message when !copy. `msg` is released either way. */
PyObject *frame_or_bytes(pseud_state *st, zmq_msg_t *msg, int copy);

#endif
