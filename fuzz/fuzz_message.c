/* libFuzzer harness: a whole message, frames to dispatch decision, without
 * a socket. The steps the reader takes (rpc_dispatch.c, rpc_calls.c):
 * wire_parse checks the envelope; by message type, a WORK body is decoded
 * and must be (name: str, args: tuple, kwargs: dict or None), an OK body
 * decoded, an ERROR body decoded and rebuilt into the exception the caller
 * gets; authentication and heartbeat messages go to plugins (nothing to
 * decode here); any other type is refused. */
#include "embed.h"
#include "codec.h"
#include "remote_error.h"
#include "wire.h"
#include "frames.h"     /* after wire.h: fuzz_frames_to_wire */

static void
dispatch(const wire_message *m)
{
    char type = m->type;
    if (type != PSEUD_WORK[0] && type != PSEUD_OK[0] && type != PSEUD_ERROR[0])
        return;     /* a plugin's message, or an unknown type refused as such */
    PyObject *value = codec_unpack(fuzz_st->default_packer, m->body, m->body_len);
    if (value == NULL) {
        fuzz_expect_refusal("decoding a body");
        return;
    }
    if (type == PSEUD_ERROR[0]) {
        PyObject *exc = remote_error_rebuild(fuzz_st, value);
        if (exc == NULL)
            fuzz_expect_refusal("remote_error_rebuild");
        else if (!PyExceptionInstance_Check(exc))
            abort();
        Py_XDECREF(exc);
    }
    else if (type == PSEUD_WORK[0] && PyTuple_Check(value) && PyTuple_GET_SIZE(value) == 3) {
        /* the shape handle_work accepts; its kwargs keys must be str */
        PyObject *kwargs = PyTuple_GET_ITEM(value, 2);
        if (PyDict_Check(kwargs)) {
            PyObject *k, *v;
            Py_ssize_t pos = 0;
            while (PyDict_Next(kwargs, &pos, &k, &v))
                (void)PyUnicode_Check(k);
        }
    }
    Py_DECREF(value);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_frames in;
    fuzz_frames_split(data, size, &in);
    if (in.n == 0)
        return 0;
    wire_message m;
    int total = fuzz_frames_to_wire(&in, &m, WIRE_FRAMES);
    if (wire_parse(&m, total, WIRE_FRAMES) == WIRE_MESSAGE)
        dispatch(&m);
    wire_release(&m);
    fuzz_frames_free(&in);
    return 0;
}
