/* AttributeWrapper: the attribute-chained method proxy. `client.a.b(1)`
 * builds proxies for 'a' then 'a.b' and calls send_work(peer, 'a.b', ...). */
#ifndef PSEUD_PROXY_H
#define PSEUD_PROXY_H

#include "module.h"

int proxy_init_module(PyObject *module, pseud_state *st);

/* What calling a proxy does: send `name` with args (tuple) and kwargs
 * (dict or NULL) through `target` to `peer` (bytes, or NULL for the
 * target's default peer); returns a future, or the value itself for
 * SyncClient. */
typedef PyObject *(*proxy_sender)(PyObject *target, PyObject *peer, PyObject *name,
                                  PyObject *args, PyObject *kwargs);

/* A proxy calling `name` (str) on `peer` through `target` (new ref). */
PyObject *proxy_new(pseud_state *st, PyObject *target, proxy_sender send,
                    PyObject *peer, PyObject *name);

#endif
