/* ZAP handler of the built-in security plugins: one per process, serving
 * every server by its ZAP domain (see zap.c). */
#ifndef PSEUD_ZAP_H
#define PSEUD_ZAP_H

#include "module.h"

/* Adds zap_register(domain, backend) and zap_unregister(domain). */
int zap_init_module(PyObject *module);

#endif
