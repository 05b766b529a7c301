/* The default translation table for ext types 123-126 (datetime objects as
 * restricted pickles), see datetime_ext.c. */
#ifndef PSEUD_DATETIME_EXT_H
#define PSEUD_DATETIME_EXT_H

#include "module.h"

/* A new dict {123: (tzinfo, dumps, unpickle), 124: (timedelta, ...),
 * 125: (datetime, ...), 126: (date, ...)}, or NULL with an exception set. */
PyObject *datetime_ext_default_table(void);

#endif
