/* pyzmq-like sockets for plugins (docs/guide/plugins.rst): _pseud.Socket
 * (socket.c, socket_io.c, options in sockopt.c), _pseud.Frame (frame.c),
 * _pseud.Context with curve_keypair, z85 and friends (context.c); failures
 * raise ZMQError/Again (errors.c). No dependency on pyzmq.
 *
 * Sockets are cooperative under gevent: a blocking send/recv parks the
 * calling greenlet on the socket's ZMQ_FD (fdwatch.c) and several
 * greenlets may share one socket. This header is the C API the rest of
 * the extension uses. */
#ifndef PSEUD_SOCKET_H
#define PSEUD_SOCKET_H

#include "module.h"

/* The module exec steps of each file. 0 / -1. */
int socket_init_module(PyObject *module, pseud_state *st);
int sockopt_init_module(PyObject *module);
int frame_init_module(PyObject *module, pseud_state *st);
int context_init_module(PyObject *module, pseud_state *st);

/* A Socket object around an existing libzmq socket (new reference).
 * owned=1: the object closes it (close() or dealloc).
 * owned=0: the caller keeps ownership; close() only marks the object
 * closed for Python and never calls zmq_close. The owner must call
 * socket_detach() before it zmq_close()s the handle itself. */
PyObject *socket_wrap(pseud_state *st, void *zsock, int owned);

/* A new owned Socket of `kind` (ZMQ_REP...) on the module's context. */
PyObject *socket_new(pseud_state *st, int kind);

/* The libzmq handle of a Socket object; NULL (no exception set) when
 * `sock` is not a Socket or is closed. */
void *socket_handle(PyObject *sock);

/* Mark a Socket closed without ever calling zmq_close (whatever `owned`
 * says) and wake its blocked greenlets with ZMQError(ENOTSOCK). For the
 * owner of a wrapped handle about to close it. Never raises. */
void socket_detach(PyObject *sock);

/* What Socket's methods of those names do, for a Socket object:
 * bind(endpoint) -> the bound endpoint (str); unbind: 0 / -1; close()
 * with linger 0 (never raises); closed. */
PyObject *socket_bind_endpoint(PyObject *sock, PyObject *endpoint);
int socket_unbind_endpoint(PyObject *sock, PyObject *endpoint);
void socket_close(PyObject *sock);
int socket_is_closed(PyObject *sock);

/* recv_multipart() -> list of bytes, and send_multipart(frames) with a
 * list of bytes-like frames (0 / -1): both park cooperatively. */
PyObject *socket_recv_list(PyObject *sock);
int socket_send_list(PyObject *sock, PyObject *frames);

#endif
