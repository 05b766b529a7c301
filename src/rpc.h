/* RPC: the base type of Server and Client (rpc.c), with its outgoing
 * calls (rpc_calls.c), incoming messages (rpc_dispatch.c) and sending
 * (rpc_outbox.c); rpc_object.h is their private layout. */
#ifndef PSEUD_RPC_H
#define PSEUD_RPC_H

#include "module.h"

int rpc_init_module(PyObject *module, pseud_state *st);

/* Send WORK `name` (str) with `args` (tuple) and `kwargs` (dict or NULL)
 * to `peer` (bytes); returns the future of its result (new ref). */
PyObject *rpc_send_work(PyObject *rpc, PyObject *peer, PyObject *name,
                        PyObject *args, PyObject *kwargs);

#endif
