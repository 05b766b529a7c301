/* Registry of RPC callables: (name, domain) -> RPCCallable, with a local
 * registry seeing the global one behind it (docs/guide/registries.rst). */
#ifndef PSEUD_REGISTRY_H
#define PSEUD_REGISTRY_H

#include "module.h"

/* Add Registry and RPCCallable types, create the global registry; called
 * from module exec. */
int registry_init_module(PyObject *module, pseud_state *st);

/* Find the callable for `name` (str) in `registry` then its bases, trying
 * non-default domains before 'default', each entry's domain predicate
 * having to accept `predicate_kwargs` (a dict, or NULL for none).
 * Returns a new reference to an RPCCallable, or NULL with
 * ServiceNotFoundError(name) set (or another exception if a predicate raised). */
PyObject *registry_lookup(pseud_state *st, PyObject *registry, PyObject *name,
                          PyObject *predicate_kwargs);

/* RPCCallable accessors for the dispatcher (borrowed reference / flag). */
PyObject *rpccallable_func(PyObject *callable);
int rpccallable_with_identity(PyObject *callable);

#endif
