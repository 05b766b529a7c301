/* pyzmq-like sockets for plugins (SPEC section 6): _pseud.Context,
 * _pseud.Socket, _pseud.Frame, ZMQError/Again, option and kind constants,
 * curve_keypair, z85_encode/z85_decode. No dependency on pyzmq.
 *
 * Sockets are cooperative under gevent: a blocking send/recv parks the
 * calling greenlet on the socket's ZMQ_FD (edge-triggered, see socket.c)
 * and several greenlets may share one socket. */
#ifndef PSEUD_SOCKET_H
#define PSEUD_SOCKET_H

#include "module.h"

/* Create the types, exceptions, constants and functions; called once from
 * the module's exec slot. 0 / -1. */
int socket_init_module(PyObject *module, pseud_state *st);

/* A Socket object around an existing libzmq socket (new reference).
 * owned=1: the object closes it (close() or dealloc).
 * owned=0: the caller keeps ownership; close() only marks the object
 * closed for Python and never calls zmq_close. The owner must call
 * socket_detach() before it zmq_close()s the handle itself. */
PyObject *socket_wrap(pseud_state *st, void *zsock, int owned);

/* The libzmq handle of a Socket object; NULL (no exception set) when
 * `sock` is not a Socket or is closed. */
void *socket_handle(PyObject *sock);

/* Mark a Socket closed without ever calling zmq_close (whatever `owned`
 * says) and wake its blocked greenlets with ZMQError(ENOTSOCK). For the
 * owner of a wrapped handle about to close it. Never raises. */
void socket_detach(PyObject *sock);

#endif
