/* msgpack <-> Python objects (docs/protocol.rst), exposed as pseud.packer.Packer.
 * Packing uses msgpack-c's packer; unpacking is a bounded reader of our own
 * that checks every length against the bytes left before allocating. */
#ifndef PSEUD_CODEC_H
#define PSEUD_CODEC_H

#include "module.h"
#include <msgpack.h>

#define PSEUD_DEFAULT_MAX_DEPTH 128

/* Add the Packer type (and ExtType) to the module; called from module exec. */
int codec_init_module(PyObject *module, pseud_state *st);

/* Pack `obj` with `packer` (a Packer instance) into `sbuf`, which the
 * caller has initialised with msgpack_sbuffer_init and owns. Returns 0, or
 * -1 with an exception set (TypeError for an object msgpack cannot carry,
 * ValueError for nesting deeper than the packer's max_depth). */
int codec_pack(PyObject *packer, PyObject *obj, msgpack_sbuffer *sbuf);

/* Pack the call (name, args, kwargs) like codec_pack of that tuple, with
 * {} when kwargs is NULL. Same contract as codec_pack. */
int codec_pack_call(PyObject *packer, PyObject *name, PyObject *args, PyObject *kwargs,
                    msgpack_sbuffer *sbuf);

/* Decode exactly one msgpack object filling data[0:len]. Returns a new
 * reference, or NULL with ValueError set for truncated, trailing, garbage
 * or over-limit input. Never allocates more than O(len) for hostile input. */
PyObject *codec_unpack(PyObject *packer, const char *data, size_t len);

/* Decode the first msgpack object of data[0:len]; *used gets the bytes it
 * took (what follows is not looked at). Same contract otherwise. */
PyObject *codec_unpack_first(PyObject *packer, const char *data, size_t len, size_t *used);

/* codec_unpack's ValueError for `extra` bytes left at offset `at`: set,
 * or its message (a new str, NULL with an exception). */
void codec_trailing_error(size_t extra, size_t at);
PyObject *codec_trailing_message(size_t extra, size_t at);

#endif
