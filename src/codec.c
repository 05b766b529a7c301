/* STUB: replaced by the codec implementation. */
#include "codec.h"
int codec_init_module(PyObject *module, pseud_state *st) { (void)module; (void)st; return 0; }
int codec_pack(PyObject *packer, PyObject *obj, msgpack_sbuffer *sbuf)
{ (void)packer; (void)obj; (void)sbuf; PyErr_SetString(PyExc_NotImplementedError, "codec"); return -1; }
PyObject *codec_unpack(PyObject *packer, const char *data, size_t len)
{ (void)packer; (void)data; (void)len; PyErr_SetString(PyExc_NotImplementedError, "codec"); return NULL; }
