/* libFuzzer harness: the restricted unpickler of the datetime ext types
 * 123-126 (docs/protocol.rst), reached as a peer reaches it: an ext
 * object in a msgpack body. Input: one byte choosing the code (123 + b % 4),
 * then the pickle. */
#include "embed.h"
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > UINT32_MAX)
        return 0;
    size_t len = size - 1;
    unsigned char *body = malloc(6 + len);
    if (body == NULL)
        abort();
    body[0] = 0xc9;     /* ext 32 */
    body[1] = (unsigned char)(len >> 24);
    body[2] = (unsigned char)(len >> 16);
    body[3] = (unsigned char)(len >> 8);
    body[4] = (unsigned char)len;
    body[5] = (unsigned char)(123 + data[0] % 4);
    memcpy(body + 6, data + 1, len);
    PyObject *obj = codec_unpack(fuzz_st->default_packer, (const char *)body, 6 + len);
    free(body);
    if (obj == NULL) {
        fuzz_expect_refusal("unpickling a datetime ext");
        return 0;
    }
    /* a decoded value must be a working datetime object */
    PyObject *r = PyObject_Repr(obj);
    if (r == NULL)
        fuzz_expect_refusal("repr of a decoded datetime");
    Py_XDECREF(r);
    Py_DECREF(obj);
    return 0;
}
