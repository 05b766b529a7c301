/* Python objects -> msgpack (codec_pack, Packer.packb): walks the object
 * graph and emits through msgpack-c's packer into a msgpack_sbuffer. Exact
 * built-in types first, then their subclasses, then ExtType, then the
 * Packer's translation table (ext types; the datetime ones are in
 * datetime_ext.c). Recursion is bounded by the Packer's max_depth. */
#include "packer.h"

#include <stdint.h>
typedef struct {
    PackerObject *packer;
    msgpack_packer pk;
} pack_ctx;

static int pack_obj(pack_ctx *c, PyObject *obj, int depth);

static int
pack_failed(void)
{
    /* msgpack-c's writers only fail when the sbuffer cannot grow */
    PyErr_NoMemory();
    return -1;
}

/* run a msgpack-c writer; on failure, set MemoryError and return -1 */
#define PACK_OR_FAIL(call) do { if ((call) != 0) return pack_failed(); } while (0)

static int
check_len32(size_t len, const char *what)
{
    if (len > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: %s of %zu bytes/items is too large for msgpack "
                     "(at most 2**32-1)", what, len);
        return -1;
    }
    return 0;
}

static int
pack_int(pack_ctx *c, PyObject *obj)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow == 0) {
        PACK_OR_FAIL(msgpack_pack_int64(&c->pk, (int64_t)v));
        return 0;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            PACK_OR_FAIL(msgpack_pack_uint64(&c->pk, (uint64_t)u));
            return 0;
        }
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
    }
    PyErr_SetString(PyExc_OverflowError,
                    "pseud: int out of msgpack range (must be within "
                    "-2**63 .. 2**64-1)");
    return -1;
}

static int
pack_str(pack_ctx *c, PyObject *obj)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (s == NULL)
        return -1;
    if (check_len32((size_t)len, "str") < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_str_with_body(&c->pk, s, (size_t)len));
    return 0;
}

static int
pack_bin(pack_ctx *c, const void *buf, Py_ssize_t len)
{
    if (check_len32((size_t)len, "bytes") < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_bin_with_body(&c->pk, buf, (size_t)len));
    return 0;
}

/* any bytes-like object (memoryview...) as bin */
static int
pack_buffer(pack_ctx *c, PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0)
        return -1;
    int rc;
    if (PyBuffer_IsContiguous(&view, 'C')) {
        rc = pack_bin(c, view.buf, view.len);
    }
    else {
        PyObject *b = PyBytes_FromObject(obj);
        rc = b == NULL ? -1 : pack_bin(c, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
        Py_XDECREF(b);
    }
    PyBuffer_Release(&view);
    return rc;
}

static int
enter_container(pack_ctx *c, int depth)
{
    if (depth >= c->packer->max_depth) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: cannot pack, nesting deeper than max_depth (%d)",
                     c->packer->max_depth);
        return -1;
    }
    return 0;
}

static int
pack_tuple(pack_ctx *c, PyObject *obj, int depth)
{
    if (enter_container(c, depth) < 0)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(obj);
    if (check_len32((size_t)n, "array") < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_array(&c->pk, (size_t)n));
    /* a tuple is immutable and the caller keeps it alive: items are too */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (pack_obj(c, PyTuple_GET_ITEM(obj, i), depth + 1) < 0)
            return -1;
    }
    return 0;
}

static int
pack_list(pack_ctx *c, PyObject *obj, int depth)
{
    if (enter_container(c, depth) < 0)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(obj);
    if (check_len32((size_t)n, "array") < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_array(&c->pk, (size_t)n));
    for (Py_ssize_t i = 0; i < n; i++) {
        /* a pack function may mutate the list while we walk it */
        if (i >= PyList_GET_SIZE(obj)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "pseud: list changed size during packing");
            return -1;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(obj, i));
        int rc = pack_obj(c, item, depth + 1);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
pack_dict(pack_ctx *c, PyObject *obj, int depth)
{
    if (enter_container(c, depth) < 0)
        return -1;
    Py_ssize_t n = PyDict_GET_SIZE(obj);
    if (check_len32((size_t)n, "map") < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_map(&c->pk, (size_t)n));
    Py_ssize_t pos = 0, done = 0;
    PyObject *k, *v;
    while (done < n && PyDict_Next(obj, &pos, &k, &v)) {
        Py_INCREF(k);
        Py_INCREF(v);
        int rc = pack_obj(c, k, depth + 1);
        if (rc == 0)
            rc = pack_obj(c, v, depth + 1);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
        done++;
    }
    if (done != n) {
        PyErr_SetString(PyExc_RuntimeError,
                        "pseud: dict changed size during packing");
        return -1;
    }
    return 0;
}

static int
pack_ext(pack_ctx *c, int code, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "pseud: data of ext type %d must be bytes, not %.100s",
                         code, Py_TYPE(data)->tp_name);
        }
        return -1;
    }
    int rc = check_len32((size_t)view.len, "ext data");
    if (rc == 0 && msgpack_pack_ext_with_body(&c->pk, view.buf, (size_t)view.len,
                                              (int8_t)code) != 0)
        rc = pack_failed();
    PyBuffer_Release(&view);
    return rc;
}

static int
pack_ext_type(pack_ctx *c, PyObject *obj)
{
    if (PyTuple_GET_SIZE(obj) != 2) {
        PyErr_SetString(PyExc_ValueError, "pseud: malformed ExtType");
        return -1;
    }
    int code;
    if (packer_parse_ext_code(PyTuple_GET_ITEM(obj, 0), &code) < 0)
        return -1;
    return pack_ext(c, code, PyTuple_GET_ITEM(obj, 1));
}

/* Find the translation-table entry for obj's class: entries are tried in
 * ascending code order with isinstance, the first match wins, and the answer
 * is cached per exact class. Returns 0 with *code set (EXT_SLOTS when
 * nothing matches), or -1 with an exception set. */
static int
lookup_ext_code(PackerObject *self, PyObject *obj, int *code)
{
    PyObject *tp = (PyObject *)Py_TYPE(obj);
    PyObject *hit = PyDict_GetItemWithError(self->type_cache, tp);
    if (hit != NULL) {
        *code = hit == Py_None ? EXT_SLOTS : (int)PyLong_AsLong(hit);
        return 0;
    }
    if (PyErr_Occurred())
        return -1;

    int found = EXT_SLOTS;
    for (int i = 0; i < EXT_SLOTS; i++) {
        PyObject *cls = self->ext[i].cls;
        if (cls == NULL)
            continue;
        Py_INCREF(cls);
        int r = PyObject_IsInstance(obj, cls);
        Py_DECREF(cls);
        if (r < 0)
            return -1;
        if (r) {
            found = i - 128;
            break;
        }
    }
    if (PyDict_GET_SIZE(self->type_cache) >= TYPE_CACHE_MAX)
        PyDict_Clear(self->type_cache);
    PyObject *val = found == EXT_SLOTS ? Py_NewRef(Py_None) : PyLong_FromLong(found);
    if (val == NULL)
        return -1;
    int rc = PyDict_SetItem(self->type_cache, tp, val);
    Py_DECREF(val);
    if (rc < 0)
        return -1;
    *code = found;
    return 0;
}

static int
pack_translated(pack_ctx *c, PyObject *obj)
{
    PackerObject *self = c->packer;
    int code;
    if (lookup_ext_code(self, obj, &code) < 0)
        return -1;
    PyObject *pack = code == EXT_SLOTS ? NULL : self->ext[EXT_INDEX(code)].pack;
    if (pack == NULL) {
        PyErr_Format(PyExc_TypeError, "Unknown type: %R", obj);
        return -1;
    }
    Py_INCREF(pack);
    PyObject *data = PyObject_CallOneArg(pack, obj);
    Py_DECREF(pack);
    if (data == NULL)
        return -1;
    int rc;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "pseud: pack function of ext type %d returned %.100s, "
                     "expected bytes", code, Py_TYPE(data)->tp_name);
        rc = -1;
    }
    else {
        rc = pack_ext(c, code, data);
    }
    Py_DECREF(data);
    return rc;
}

static int
pack_obj(pack_ctx *c, PyObject *obj, int depth)
{
    /* exact types first: the common case */
    if (obj == Py_None) {
        PACK_OR_FAIL(msgpack_pack_nil(&c->pk));
        return 0;
    }
    if (obj == Py_True) {
        PACK_OR_FAIL(msgpack_pack_true(&c->pk));
        return 0;
    }
    if (obj == Py_False) {
        PACK_OR_FAIL(msgpack_pack_false(&c->pk));
        return 0;
    }
    if (PyLong_CheckExact(obj))
        return pack_int(c, obj);
    if (PyUnicode_CheckExact(obj))
        return pack_str(c, obj);
    if (PyFloat_CheckExact(obj)) {
        PACK_OR_FAIL(msgpack_pack_double(&c->pk, PyFloat_AS_DOUBLE(obj)));
        return 0;
    }
    if (PyBytes_CheckExact(obj))
        return pack_bin(c, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
    if (PyTuple_CheckExact(obj))
        return pack_tuple(c, obj, depth);
    if (PyList_CheckExact(obj))
        return pack_list(c, obj, depth);
    if (PyDict_CheckExact(obj))
        return pack_dict(c, obj, depth);
    if (PyByteArray_CheckExact(obj))
        return pack_bin(c, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));

    /* ExtType is a tuple subclass: before the subclass checks */
    if (PyObject_TypeCheck(obj, (PyTypeObject *)c->packer->ext_type))
        return pack_ext_type(c, obj);

    /* subclasses of the native types */
    if (PyLong_Check(obj))
        return pack_int(c, obj);
    if (PyUnicode_Check(obj))
        return pack_str(c, obj);
    if (PyFloat_Check(obj)) {
        PACK_OR_FAIL(msgpack_pack_double(&c->pk, PyFloat_AS_DOUBLE(obj)));
        return 0;
    }
    if (PyBytes_Check(obj))
        return pack_bin(c, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj));
    if (PyByteArray_Check(obj))
        return pack_bin(c, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));
    if (PyMemoryView_Check(obj))
        return pack_buffer(c, obj);
    if (PyTuple_Check(obj))
        return pack_tuple(c, obj, depth);
    if (PyList_Check(obj))
        return pack_list(c, obj, depth);
    if (PyDict_Check(obj))
        return pack_dict(c, obj, depth);

    return pack_translated(c, obj);
}

/* The body of a WORK message, (name, args, kwargs) with {} for no
 * kwargs, packed from its parts: the same bytes as packing that tuple,
 * without building the tuple and an empty dict for every call. */
static int
pack_call(pack_ctx *c, PyObject *name, PyObject *args, PyObject *kwargs)
{
    if (enter_container(c, 0) < 0)
        return -1;
    PACK_OR_FAIL(msgpack_pack_array(&c->pk, 3));
    if (pack_obj(c, name, 1) < 0 || pack_obj(c, args, 1) < 0)
        return -1;
    if (kwargs != NULL)
        return pack_obj(c, kwargs, 1);
    PACK_OR_FAIL(msgpack_pack_map(&c->pk, 0));
    return 0;
}

#undef PACK_OR_FAIL

int
codec_pack(PyObject *packer, PyObject *obj, msgpack_sbuffer *sbuf)
{
    PackerObject *self = packer_checked(packer);
    if (self == NULL)
        return -1;
    pack_ctx c;
    c.packer = self;
    msgpack_packer_init(&c.pk, sbuf, msgpack_sbuffer_write);
    Py_INCREF(packer);
    int rc = pack_obj(&c, obj, 0);
    Py_DECREF(packer);
    return rc;
}

int
codec_pack_call(PyObject *packer, PyObject *name, PyObject *args, PyObject *kwargs,
                msgpack_sbuffer *sbuf)
{
    PackerObject *self = packer_checked(packer);
    if (self == NULL)
        return -1;
    pack_ctx c;
    c.packer = self;
    msgpack_packer_init(&c.pk, sbuf, msgpack_sbuffer_write);
    Py_INCREF(packer);
    int rc = pack_call(&c, name, args, kwargs);
    Py_DECREF(packer);
    return rc;
}
