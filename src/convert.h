/* Small conversions the RPC and the SyncClient share: identities and
 * endpoints given as str or bytes, message ids, libzmq errors. */
#ifndef PSEUD_CONVERT_H
#define PSEUD_CONVERT_H

#include "module.h"

/* str (utf-8) or bytes -> bytes; None (or NULL) stays None; anything else
 * is a TypeError naming `what`. New reference. */
PyObject *convert_identity(PyObject *value, const char *what);

/* An endpoint given as str or bytes, as bytes for libzmq. New reference. */
PyObject *convert_endpoint(PyObject *endpoint);

/* OSError("pseud: <what> failed: <zmq_strerror>") from zmq_errno(); NULL. */
PyObject *convert_zmq_error(const char *what);

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
