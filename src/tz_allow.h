/* The allowlist of globals a datetime pickle from the network may name
 * (ext types 123-126, docs/protocol.rst), and the checked stand-ins that
 * replace the real reconstructors. Used by datetime_ext.c. */
#ifndef PSEUD_TZ_ALLOW_H
#define PSEUD_TZ_ALLOW_H

#include "module.h"
#include "pickle_check.h"

/* What a pickle may do beyond calling a global (pickle_check.h): NEWOBJ
 * of dateutil's tzutc, tzoffset, tzlocal and 2.x _ttinfo, a REDUCE of
 * dateutil 2.x's tzfile, and BUILD of some of these. */
extern const pickle_class_name tz_allow_classes[];
extern const size_t tz_allow_n_classes;

/* The allowlist of the globals a datetime pickle may name, as a new
 * state object for tz_allow_lookup and tz_allow_finish: the datetime
 * classes at once; the zoneinfo, dateutil and pytz entries, when those
 * packages are importable, on the first lookup of one of their names (so
 * `import pseud` imports none of them, nor does a pickle that names none).
 * Entries are the real class where calling it with any arguments a
 * checked pickle can build is harmless, and otherwise a stand-in that
 * checks the arguments first. `error` is the exception class the
 * stand-ins raise. NULL with an exception set on failure. */
PyObject *tz_allow_new(PyObject *error);

/* find_class's lookup of (module, name): 1 with *entry a new reference,
 * 0 if it is not in the allowlist, -1 with an exception set (an optional
 * package failing to import otherwise than with ImportError). */
int tz_allow_lookup(PyObject *state, PyObject *module, PyObject *name, PyObject **entry);

/* Finish a decoded datetime or tzinfo whose zone is a record (tz_record.h):
 * a dateutil tzlocal or tzoffset record (NEWOBJ and BUILD) must hold
 * exactly the attributes, of the same types, as one made here, and then
 * becomes a real one with those values; a dateutil 2.x tzfile record
 * becomes the local dateutil's (tz_dateutil2.c). Returns a new reference
 * to the value to give the caller (`obj`, or a copy of it in the
 * converted zone), or NULL with ValueError set. */
PyObject *tz_allow_finish(PyObject *state, PyObject *obj);

/* Put allowed[(module, name)] = obj (tz_allow.c, tz_dateutil2.c). */
int tz_allow_put(PyObject *allowed, const char *module, const char *name, PyObject *obj);

/* Put the entry of dateutil.tz.tz.<name>, a class NEWOBJ may name: a
 * stand-in type that, called with no arguments, returns nullary() (a
 * record, or tzutc's singleton) and, with arguments, check(*args), or
 * refuses them with `error` if check is None. */
int tz_allow_class(PyObject *allowed, const char *name, PyObject *nullary, PyObject *check,
                   PyObject *error);

/* Checks of the values a pickle gives the stand-ins (tz_allow.c,
 * tz_dateutil2.c). Each returns 1 if `obj` passes, 0 otherwise. */
/* an exact str of at most max characters (or None, if none_ok) */
int tz_check_short_str(PyObject *obj, Py_ssize_t max, int none_ok);
/* an exact int with |obj| < limit; sets *out unless NULL */
int tz_check_small_int(PyObject *obj, long limit, long *out);
/* an exact list or tuple whose items all pass `item`; bounded by the
 * pickle's length, which pickle_check limited */
int tz_check_list_of(PyObject *obj, int (*item)(PyObject *));
/* seconds since the epoch of a transition: within datetime's years 1..9999 */
int tz_check_time(PyObject *obj);
/* an offset in seconds, under a day */
int tz_check_offset(PyObject *obj);
/* a time zone abbreviation: a str of at most 64 characters */
int tz_check_abbr(PyObject *obj);

#endif
