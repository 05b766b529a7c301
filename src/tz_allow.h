/* The allowlist of globals a datetime pickle from the network may name
 * (ext types 123-126, docs/protocol.rst), and the checked stand-ins that
 * replace the real reconstructors. Used by datetime_ext.c. */
#ifndef PSEUD_TZ_ALLOW_H
#define PSEUD_TZ_ALLOW_H

#include "module.h"
#include "pickle_check.h"

/* The classes a pickle may instantiate with NEWOBJ (dateutil's tzutc,
 * tzoffset, tzlocal) and whether BUILD may fill them: for pickle_check(). */
extern const pickle_class_name tz_allow_newobj[];
extern const size_t tz_allow_n_newobj;

/* Fill `allowed`, a dict {(module, qualname): object}, with every global a
 * datetime pickle may name: the datetime classes, and the zoneinfo,
 * dateutil and pytz entries when those packages are importable. Entries
 * are the real class where calling it with any arguments a checked pickle
 * can build is harmless, and otherwise a stand-in that checks the arguments
 * first. `error` is the exception class the stand-ins raise.
 * Returns 0, or -1 with an exception set. */
int tz_allow_fill(PyObject *allowed, PyObject *error);

/* What tz_allow_check_result needs: a new reference (None when dateutil is
 * not importable), or NULL with an exception set. */
PyObject *tz_allow_result_context(void);

/* Check a decoded datetime or tzinfo: a dateutil tzlocal or tzoffset (made
 * by NEWOBJ and BUILD) must hold exactly the attributes, of the same types,
 * as one made here. Returns 0, or -1 with ValueError set. */
int tz_allow_check_result(PyObject *context, PyObject *obj);

#endif
