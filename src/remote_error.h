/* Exceptions across the wire (docs/guide/errors.rst). */
#ifndef PSEUD_REMOTE_ERROR_H
#define PSEUD_REMOTE_ERROR_H

#include "module.h"

/* Adds format_remote_traceback() to the module. */
int remote_error_init_module(PyObject *module);

/* The remote traceback text framed and indented, as upstream prints it. */
PyObject *format_remote_traceback(PyObject *text);

/* (class name, str(exc), traceback text) of the exception being raised,
 * which is cleared and logged on the 'pseud' logger as a failed job.
 * Returns a new tuple, or NULL (with no exception set) if even that fails. */
PyObject *remote_error_triple(pseud_state *st);

/* (class name, str(exc), '') of the exception being raised -- the pack
 * error of a result that cannot travel -- which is cleared. New tuple, or
 * NULL (no exception set) if even that fails. */
PyObject *remote_error_cannot_travel(void);

/* (class name, message, traceback) of the ServiceNotFoundError being
 * raised, which is cleared; the traceback names the extension `module`'s
 * file, where the lookup ran. New tuple, or NULL (no exception set). */
PyObject *remote_error_not_found(PyObject *module);

/* (cls, message, '') for input the core refuses (ValueError, "pseud: ...");
 * message is a str. New tuple, or NULL (no exception set). */
PyObject *remote_error_refusal(const char *cls, PyObject *message);

/* The exception an ERROR body stands for: a builtin or pseud.interfaces
 * Exception subclass of that name, else Exception("name\n..."). A malformed
 * body gives an Exception saying so. New reference, or NULL on failure. */
PyObject *remote_error_rebuild(pseud_state *st, PyObject *triple);

#endif
