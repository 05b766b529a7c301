/* libFuzzer harness: the bounded msgpack decoder (codec_unpack) with the
 * default Packer's limits, on any body a peer can send. */
#include "embed.h"
#include "codec.h"

#include <stdint.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PyObject *obj = codec_unpack(fuzz_st->default_packer, (const char *)data, size);
    if (obj == NULL) {
        fuzz_expect_refusal("codec_unpack");
        return 0;
    }
    /* what the dispatcher does next with a body: look at it */
    PyObject *r = PyObject_Repr(obj);
    if (r == NULL)
        fuzz_expect_refusal("repr of a decoded body");
    Py_XDECREF(r);
    Py_DECREF(obj);
    return 0;
}
