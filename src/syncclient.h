/* SyncClient: blocking RPC client over a REQ socket, no gevent needed. */
#ifndef PSEUD_SYNCCLIENT_H
#define PSEUD_SYNCCLIENT_H

#include "module.h"

int syncclient_init_module(PyObject *module, pseud_state *st);

#endif
