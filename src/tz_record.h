/* Records: what dateutil's classes whose pickles carry a state (BUILD)
 * resolve to while _pickle runs a datetime pickle from the network (ext
 * types 123-126, docs/protocol.rst). Used by tz_allow.c and
 * tz_dateutil2.c, which check and convert them once the pickle is loaded. */
#ifndef PSEUD_TZ_RECORD_H
#define PSEUD_TZ_RECORD_H

#include "module.h"

/* What a record stands for. */
enum {
    TZ_RECORD_INSTANCE,     /* a tzlocal or tzoffset made by NEWOBJ; arg: its class */
    TZ_RECORD_TZFILE,       /* a dateutil 2.x tzfile(None, filename); arg: filename */
    TZ_RECORD_TTINFO,       /* a dateutil 2.x _ttinfo; arg: NULL */
};

/* A record keeps what the pickle gives it and nothing else runs on it:
 * its __setstate__ keeps BUILD's one dict as it is, so _pickle neither
 * interns the dict's keys (chosen by the peer; interned strs are immortal
 * from Python 3.12 on) nor sets any attribute of a real object from a
 * state nobody checked yet. */
typedef struct {
    PyObject_HEAD
    int kind;               /* TZ_RECORD_* */
    PyObject *arg;          /* see the kinds */
    PyObject *state;        /* the dict BUILD gave, or NULL */
    Py_ssize_t index;       /* the converter's: -1 until it sets it */
} tz_record;

/* A new record type, that cannot be called (records are made by
 * tz_record_new or a maker): a subclass of datetime.tzinfo if `tzinfo`
 * (the zones' records: datetime() takes them as its tzinfo), else of
 * object (_ttinfo's: no zone). NULL with an exception set on failure. */
PyObject *tz_record_type_new(int tzinfo);

/* A new record of `type` (from tz_record_type_new): `kind`, `arg` (may be
 * NULL), no state. */
PyObject *tz_record_new(PyObject *type, int kind, PyObject *arg);

/* A callable taking no arguments that returns tz_record_new(type, kind,
 * arg): what NEWOBJ's stand-in (tz_allow.c) calls. */
PyObject *tz_record_maker(PyObject *type, int kind, PyObject *arg);

/* `obj` as a record (of any record type: two threads may each have built
 * an allowlist), or NULL if it is none. */
tz_record *tz_record_of(PyObject *obj);

#endif
