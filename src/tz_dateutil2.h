/* dateutil 2.x tzfile zones in datetime pickles from the network (ext types
 * 123-126, docs/protocol.rst): the records that stand in for tzfile and
 * _ttinfo while _pickle runs, and their conversion into the local
 * dateutil's tzfile. Used by tz_allow.c. */
#ifndef PSEUD_TZ_DATEUTIL2_H
#define PSEUD_TZ_DATEUTIL2_H

#include "module.h"
#include "tz_record.h"

/* Add dateutil.tz.tz.tzfile and dateutil.tz.tz._ttinfo (the names dateutil
 * 2.7 to 2.9 pickle a tzfile with) to `allowed` if the local dateutil can
 * hold such a zone: through `unpickle`, the checked stand-in of dateutil
 * >= 3's _tzfile._unpickle, called with `token` as its class (both None
 * for a dateutil 2.x), or else through the 2.x classes of `tz_mod`
 * (dateutil.tz.tz). The tzfile's records are of `zone_records` (a tzinfo
 * record type); `error` is what the _ttinfo stand-in raises.
 * *converter gets a new reference to what tz2_convert needs, or None
 * when nothing was added. Returns 0, or -1 with an exception set. */
int tz2_allow(PyObject *allowed, PyObject *tz_mod, PyObject *unpickle, PyObject *token,
              PyObject *zone_records, PyObject *error, PyObject **converter);

/* Check every field of a 2.x tzfile record (TZ_RECORD_TZFILE) and return
 * a new reference to the local dateutil's tzfile it describes, made by
 * `converter` (NULL with ValueError if any field is not what dateutil 2.x
 * writes, or `converter` is None). */
PyObject *tz2_convert(PyObject *converter, tz_record *rec);

#endif
