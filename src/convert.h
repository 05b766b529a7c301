/* Small conversions every part of the extension shares: identities and
 * endpoints given as str or bytes, ints, timeouts, the bound endpoint,
 * message ids. */
#ifndef PSEUD_CONVERT_H
#define PSEUD_CONVERT_H

#include "module.h"

/* str (utf-8) or bytes -> bytes; None (or NULL) stays None; anything else
 * is a TypeError naming `what`. New reference. */
PyObject *convert_identity(PyObject *value, const char *what);

/* One frame of a message a plugin sends (RPC.send_message): bytes as they
 * are, str as UTF-8 (identities read back as str when given as str), any
 * other bytes-like object copied into bytes. New reference; a TypeError
 * naming frame `index` otherwise. */
PyObject *convert_frame(PyObject *value, Py_ssize_t index);

/* An endpoint given as str or bytes, as bytes for libzmq (new reference).
 * TypeError for other types, ValueError for a NUL character: libzmq would
 * silently use what comes before it. The one endpoint conversion of the
 * RPC, the SyncClient and plugin Sockets. */
PyObject *convert_endpoint(PyObject *endpoint);

/* int of a Python int; OverflowError when out of range (-1 and an
 * exception). PyLong_AsInt is public only from Python 3.13. */
int convert_int(PyObject *obj);

/* Seconds as libzmq milliseconds (ZMQ_SNDTIMEO...): -1 (forever) when
 * too large for an int. */
int convert_timeout_ms(double seconds);

/* ZMQ_LAST_ENDPOINT of `zsock` as str (new reference), or NULL with
 * ZMQError. */
PyObject *convert_last_endpoint(pseud_state *st, void *zsock);

/* Message ids: 8 random bytes fixed per generator, then a 64-bit counter.
 * Unique per process and across peers; not secret (replies are checked
 * against the peer the call went to). */
typedef struct {
    unsigned char prefix[8];
    unsigned long long counter;
} msgid_gen;

void msgid_init(msgid_gen *gen);
void msgid_next(msgid_gen *gen, unsigned char out[16]);

#endif
