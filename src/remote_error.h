/* Exceptions across the wire (SPEC section 5). */
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

/* The exception an ERROR body stands for: a builtin or pseud.interfaces
 * Exception subclass of that name, else Exception("name\n..."). A malformed
 * body gives an Exception saying so. New reference, or NULL on failure. */
PyObject *remote_error_rebuild(pseud_state *st, PyObject *triple);

#endif
