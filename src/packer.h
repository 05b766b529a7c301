/* The Packer object's layout and the few helpers its files share: packer.c
 * (the Python type, its translation table, ExtType), codec_pack.c (Python ->
 * msgpack) and codec_unpack.c (msgpack -> Python). Internal to the codec:
 * the rest of the core uses codec.h. */
#ifndef PSEUD_PACKER_H
#define PSEUD_PACKER_H

#include "codec.h"

/* max_depth may not exceed this: packing recurses on the C stack once per
 * nesting level, so the bound keeps its stack use small (decoding keeps its
 * own stack on the heap, see codec_unpack.c). */
#define PSEUD_MAX_DEPTH_LIMIT 10000
/* the per-class dispatch cache is dropped when it grows past this */
#define TYPE_CACHE_MAX 1024

#define EXT_SLOTS 256
#define EXT_INDEX(code) ((code) + 128)

typedef struct {
    PyObject *cls;      /* type or tuple of types, for isinstance */
    PyObject *pack;     /* obj -> bytes */
    PyObject *unpack;   /* bytes -> obj */
} ext_entry;

typedef struct {
    PyObject_HEAD
    ext_entry ext[EXT_SLOTS];   /* indexed by code + 128; cls NULL if empty */
    PyObject *ext_type;         /* the ExtType namedtuple class */
    PyObject *type_cache;       /* dict: exact type -> int code, or None */
    int max_depth;
} PackerObject;

/* Parse an ext code: an int in -128..127. Returns 0 and sets *code, or -1. */
int packer_parse_ext_code(PyObject *obj, int *code);

/* 0 if the Packer was set up by tp_new, or -1 with RuntimeError. */
int packer_ready(PackerObject *self);

/* The PackerObject behind `packer`, or NULL with TypeError if it is not a
 * Packer (or not initialised). */
PackerObject *packer_checked(PyObject *packer);

#endif
