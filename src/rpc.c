/* STUB */
#include "rpc.h"
int rpc_init_module(PyObject *module, pseud_state *st) { (void)module; (void)st; return 0; }
PyObject *rpc_send_work(PyObject *rpc, PyObject *peer, PyObject *name, PyObject *args, PyObject *kwargs)
{ (void)rpc; (void)peer; (void)name; (void)args; (void)kwargs; PyErr_SetString(PyExc_NotImplementedError, "rpc"); return NULL; }
