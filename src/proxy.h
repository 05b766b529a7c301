/* AttributeWrapper: the attribute-chained method proxy. `client.a.b(1)`
 * builds proxies for 'a' then 'a.b' and calls send_work(peer, 'a.b', ...). */
#ifndef PSEUD_PROXY_H
#define PSEUD_PROXY_H

#include "module.h"

int proxy_init_module(PyObject *module, pseud_state *st);

/* A proxy calling `name` (str) on `peer` (bytes) through `rpc` (new ref). */
PyObject *proxy_new(pseud_state *st, PyObject *rpc, PyObject *peer, PyObject *name);

#endif
