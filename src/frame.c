/* _pseud.Frame: a received message frame (Socket.recv(copy=False)),
 * holding libzmq's zmq_msg_t itself: its data is read in place (buffer
 * protocol, memoryview) and copied to bytes only when asked, once. */
#include "socket_object.h"
#include "convert.h"
#include "errors.h"

#include <string.h>

typedef struct {
    PyObject_HEAD
    zmq_msg_t msg;
    PyObject *bytes;            /* cached copy, or NULL */
} FrameObject;


#define FRAME(o) ((FrameObject *)(o))

static void
frame_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    zmq_msg_close(&FRAME(op)->msg);
    Py_CLEAR(FRAME(op)->bytes);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static PyObject *
frame_get_bytes(PyObject *op, void *closure)
{
    (void)closure;
    FrameObject *f = FRAME(op);
    if (f->bytes == NULL) {
        f->bytes = PyBytes_FromStringAndSize(zmq_msg_data(&f->msg),
                                             (Py_ssize_t)zmq_msg_size(&f->msg));
        if (f->bytes == NULL)
            return NULL;
    }
    return Py_NewRef(f->bytes);
}

static PyObject *
frame_bytes_method(PyObject *op, PyObject *unused)
{
    (void)unused;
    return frame_get_bytes(op, NULL);
}

static PyObject *
frame_get_buffer(PyObject *op, void *closure)
{
    (void)closure;
    return PyMemoryView_FromObject(op);
}

static PyObject *
frame_get_more(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(zmq_msg_more(&FRAME(op)->msg));
}

static int
frame_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    FrameObject *f = FRAME(op);
    return PyBuffer_FillInfo(view, op, zmq_msg_data(&f->msg),
                             (Py_ssize_t)zmq_msg_size(&f->msg), 1, flags);
}

static Py_ssize_t
frame_len(PyObject *op)
{
    return (Py_ssize_t)zmq_msg_size(&FRAME(op)->msg);
}

static PyObject *
frame_get(PyObject *op, PyObject *prop)
{
    FrameObject *f = FRAME(op);
    pseud_state *st = pseud_state_of(op);
    if (st == NULL)
        return NULL;
    if (PyLong_Check(prop)) {
        int p = convert_int(prop);
        if (p == -1 && PyErr_Occurred())
            return NULL;
        int v = zmq_msg_get(&f->msg, p);
        if (v == -1)
            return errors_raise_zmq(st);
        return PyLong_FromLong(v);
    }
    PyObject *keep;
    if (PyUnicode_Check(prop))
        keep = PyUnicode_AsUTF8String(prop);
    else if (PyBytes_Check(prop))
        keep = Py_NewRef(prop);
    else {
        PyErr_Format(PyExc_TypeError, "Frame.get: property must be str, bytes or int, not %.100s",
                     Py_TYPE(prop)->tp_name);
        return NULL;
    }
    if (keep == NULL)
        return NULL;
    const char *v = zmq_msg_gets(&f->msg, PyBytes_AS_STRING(keep));
    Py_DECREF(keep);
    if (v == NULL)
        return errors_raise_zmq(st);
    return PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "surrogateescape");
}

static PyObject *
frame_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<_pseud.Frame %zd bytes>", frame_len(op));
}

static PyObject *
frame_richcompare(PyObject *op, PyObject *other, int cmp)
{
    if (cmp != Py_EQ && cmp != Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    Py_buffer view;
    if (PyUnicode_Check(other) || PyObject_GetBuffer(other, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    FrameObject *f = FRAME(op);
    size_t n = zmq_msg_size(&f->msg);
    int eq = (size_t)view.len == n && (n == 0 || memcmp(view.buf, zmq_msg_data(&f->msg), n) == 0);
    PyBuffer_Release(&view);
    return PyBool_FromLong(cmp == Py_EQ ? eq : !eq);
}

static PyGetSetDef frame_getset[] = {
    {"bytes", frame_get_bytes, NULL, "The frame's data as bytes (a cached copy).", NULL},
    {"buffer", frame_get_buffer, NULL, "A read-only memoryview of the frame's data.", NULL},
    {"more", frame_get_more, NULL, "True if more frames of the message follow.", NULL},
    {NULL},
};

static PyMethodDef frame_methods[] = {
    {"get", frame_get, METH_O,
     "get($self, property, /)\n--\n\nMetadata: a str via zmq_msg_gets (e.g. 'User-Id', "
     "'Socket-Type'), or an int via zmq_msg_get for an int property."},
    {"__bytes__", frame_bytes_method, METH_NOARGS, NULL},
    {NULL},
};

static PyType_Slot frame_slots[] = {
    {Py_tp_doc, "A received message frame (recv(copy=False))."},
    {Py_tp_dealloc, frame_dealloc},
    {Py_tp_repr, frame_repr},
    {Py_tp_richcompare, frame_richcompare},
    {Py_tp_getset, frame_getset},
    {Py_tp_methods, frame_methods},
    {Py_bf_getbuffer, frame_getbuffer},
    {Py_sq_length, frame_len},
    {Py_mp_length, frame_len},
    {0, NULL},
};

static PyType_Spec frame_spec = {
    .name = "pseud._pseud.Frame",
    .basicsize = sizeof(FrameObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = frame_slots,
};

PyObject *
frame_or_bytes(pseud_state *st, zmq_msg_t *msg, int copy)
{
    PyObject *res;
    if (copy) {
        res = PyBytes_FromStringAndSize(zmq_msg_data(msg), (Py_ssize_t)zmq_msg_size(msg));
    }
    else {
        FrameObject *f = PyObject_New(FrameObject, st->Frame_Type);
        if (f != NULL) {
            zmq_msg_init(&f->msg);
            zmq_msg_move(&f->msg, msg);
            f->bytes = NULL;
        }
        res = (PyObject *)f;
    }
    zmq_msg_close(msg);
    return res;
}

int
frame_init_module(PyObject *module, pseud_state *st)
{
    st->Frame_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &frame_spec, NULL);
    if (st->Frame_Type == NULL)
        return -1;
    return PyModule_AddType(module, st->Frame_Type);
}
