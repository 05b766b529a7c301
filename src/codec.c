/* msgpack <-> Python objects: the Packer type (pseud.packer.Packer).
 *
 * Packing walks the object graph and emits through msgpack-c's packer into a
 * msgpack_sbuffer. Unpacking is our own bounded reader: every count and
 * length read from the input is checked against the bytes left before any
 * container or buffer is created, so hostile input costs O(len) memory.
 *
 * Ext types 123..126 carry datetime objects as pickles (the upstream pseud
 * wire format). They are decoded with a restricted unpickler that can only
 * produce the datetime classes and the tz classes they need. */
#include "codec.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* max_depth may not exceed this: decoding and packing recurse on the C stack
 * once per nesting level, so the bound keeps the stack use small. */
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

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

/* Replace the current exception, if it is an Exception, by
 * ValueError("<msg>: <exc>") chained to it (raise ValueError(...) from exc). BaseExceptions that are
 * not Exceptions (KeyboardInterrupt, SystemExit...) are left as they are. */
static void
reraise_as_value_error(const char *fmt, ...)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    if (tb != NULL && ev != NULL)
        PyException_SetTraceback(ev, tb);

    va_list vargs;
    va_start(vargs, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, vargs);
    va_end(vargs);
    PyObject *exc = NULL;
    if (msg != NULL) {
        PyObject *full = PyUnicode_FromFormat("%U: %S", msg, ev ? ev : Py_None);
        Py_DECREF(msg);
        if (full != NULL) {
            exc = PyObject_CallOneArg(PyExc_ValueError, full);
            Py_DECREF(full);
        }
    }
    if (exc == NULL) {
        /* could not even build the message: keep the original error */
        Py_XDECREF(exc);
        PyErr_Clear();
        PyErr_Restore(et, ev, tb);
        return;
    }
    if (ev != NULL) {
        PyException_SetCause(exc, Py_NewRef(ev));      /* steals */
        PyException_SetContext(exc, Py_NewRef(ev));    /* steals */
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

/* Parse an ext code: an int in -128..127. Returns 0 and sets *code, or -1. */
static int
parse_ext_code(PyObject *obj, int *code)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "pseud: ext type code must be an int, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < -128 || v > 127) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: ext type code must be within -128..127, got %R", obj);
        return -1;
    }
    *code = (int)v;
    return 0;
}

static int
check_ext_class(PyObject *cls)
{
    if (PyType_Check(cls))
        return 0;
    if (PyTuple_Check(cls)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(cls); i++) {
            if (!PyType_Check(PyTuple_GET_ITEM(cls, i)))
                goto bad;
        }
        return 0;
    }
bad:
    PyErr_Format(PyExc_TypeError,
                 "pseud: ext type class must be a type or a tuple of types, not %R",
                 cls);
    return -1;
}

static int
check_callable(PyObject *fn, const char *what, int code)
{
    if (PyCallable_Check(fn))
        return 0;
    PyErr_Format(PyExc_TypeError, "pseud: %s function of ext type %d is not callable: %R",
                 what, code, fn);
    return -1;
}

/* Store (cls, pack, unpack) at `code`, replacing any entry. */
static int
packer_set_entry(PackerObject *self, int code, PyObject *cls, PyObject *pack,
                 PyObject *unpack)
{
    if (check_ext_class(cls) < 0 || check_callable(pack, "pack", code) < 0
        || check_callable(unpack, "unpack", code) < 0)
        return -1;
    ext_entry *e = &self->ext[EXT_INDEX(code)];
    Py_XSETREF(e->cls, Py_NewRef(cls));
    Py_XSETREF(e->pack, Py_NewRef(pack));
    Py_XSETREF(e->unpack, Py_NewRef(unpack));
    return 0;
}

/* Set entries from a {code: (cls, pack, unpack)} mapping. */
static int
packer_merge_table(PackerObject *self, PyObject *table)
{
    PyObject *items = PyMapping_Items(table);
    if (items == NULL)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items) && rc == 0; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        PyObject *key, *value;
        if (!PyArg_ParseTuple(item, "OO", &key, &value)) {
            rc = -1;
            break;
        }
        int code;
        if (parse_ext_code(key, &code) < 0) {
            rc = -1;
            break;
        }
        PyObject *seq = PySequence_Fast(value, "pseud: translation_table values "
                                               "must be (cls, pack, unpack)");
        if (seq == NULL) {
            rc = -1;
            break;
        }
        if (PySequence_Fast_GET_SIZE(seq) != 3) {
            PyErr_Format(PyExc_ValueError,
                         "pseud: translation_table[%d] must be (cls, pack, unpack), "
                         "got %zd items", code, PySequence_Fast_GET_SIZE(seq));
            rc = -1;
        }
        else {
            PyObject **f = PySequence_Fast_ITEMS(seq);
            rc = packer_set_entry(self, code, f[0], f[1], f[2]);
        }
        Py_DECREF(seq);
    }
    Py_DECREF(items);
    return rc;
}

static void
packer_clear_entries(PackerObject *self)
{
    for (int i = 0; i < EXT_SLOTS; i++) {
        Py_CLEAR(self->ext[i].cls);
        Py_CLEAR(self->ext[i].pack);
        Py_CLEAR(self->ext[i].unpack);
    }
}

static int
packer_ready(PackerObject *self)
{
    if (self->ext_type == NULL || self->type_cache == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: Packer is not initialised");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* packing                                                                  */

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

#define PK(call) do { if ((call) != 0) return pack_failed(); } while (0)

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
        PK(msgpack_pack_int64(&c->pk, (int64_t)v));
        return 0;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            PK(msgpack_pack_uint64(&c->pk, (uint64_t)u));
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
    PK(msgpack_pack_str_with_body(&c->pk, s, (size_t)len));
    return 0;
}

static int
pack_bin(pack_ctx *c, const void *buf, Py_ssize_t len)
{
    if (check_len32((size_t)len, "bytes") < 0)
        return -1;
    PK(msgpack_pack_bin_with_body(&c->pk, buf, (size_t)len));
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
    PK(msgpack_pack_array(&c->pk, (size_t)n));
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
    PK(msgpack_pack_array(&c->pk, (size_t)n));
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
    PK(msgpack_pack_map(&c->pk, (size_t)n));
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
    if (parse_ext_code(PyTuple_GET_ITEM(obj, 0), &code) < 0)
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
        PK(msgpack_pack_nil(&c->pk));
        return 0;
    }
    if (obj == Py_True) {
        PK(msgpack_pack_true(&c->pk));
        return 0;
    }
    if (obj == Py_False) {
        PK(msgpack_pack_false(&c->pk));
        return 0;
    }
    if (PyLong_CheckExact(obj))
        return pack_int(c, obj);
    if (PyUnicode_CheckExact(obj))
        return pack_str(c, obj);
    if (PyFloat_CheckExact(obj)) {
        PK(msgpack_pack_double(&c->pk, PyFloat_AS_DOUBLE(obj)));
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
        PK(msgpack_pack_double(&c->pk, PyFloat_AS_DOUBLE(obj)));
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

#undef PK

int
codec_pack(PyObject *packer, PyObject *obj, msgpack_sbuffer *sbuf)
{
    pseud_state *st = pseud_state_of(packer);
    if (st == NULL)
        return -1;
    if (!PyObject_TypeCheck(packer, st->Packer_Type)) {
        PyErr_Format(PyExc_TypeError, "pseud: expected a Packer, not %.100s",
                     Py_TYPE(packer)->tp_name);
        return -1;
    }
    PackerObject *self = (PackerObject *)packer;
    if (packer_ready(self) < 0)
        return -1;
    pack_ctx c;
    c.packer = self;
    msgpack_packer_init(&c.pk, sbuf, msgpack_sbuffer_write);
    Py_INCREF(packer);
    int rc = pack_obj(&c, obj, 0);
    Py_DECREF(packer);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* unpacking                                                                */

typedef struct {
    PackerObject *packer;
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
} reader;

static size_t
left(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static size_t
offset(const reader *r)
{
    return (size_t)(r->p - r->start);
}

/* Make sure n more bytes are there. */
static int
need(reader *r, size_t n, const char *what)
{
    if (left(r) >= n)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "pseud: truncated msgpack data: %s needs %zu bytes at offset %zu, "
                 "only %zu left", what, n, offset(r), left(r));
    return -1;
}

static uint64_t
be_read(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Read an n-byte big-endian unsigned header field. */
static int
read_uint(reader *r, int n, uint64_t *out, const char *what)
{
    if (need(r, (size_t)n, what) < 0)
        return -1;
    *out = be_read(r->p, n);
    r->p += n;
    return 0;
}

/* Refuse a payload length larger than the bytes left. */
static int
check_payload(reader *r, uint64_t len, const char *what)
{
    if (len <= left(r))
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "pseud: truncated msgpack data: %s of %llu bytes at offset %zu, "
                 "only %zu left", what, (unsigned long long)len, offset(r), left(r));
    return -1;
}

/* Refuse a container that claims more elements than could possibly fit:
 * each element takes at least one byte. */
static int
check_count(reader *r, uint64_t count, unsigned per, const char *what)
{
    if (count <= left(r) / per)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "pseud: msgpack %s at offset %zu claims %llu elements but only "
                 "%zu bytes are left", what, offset(r), (unsigned long long)count,
                 left(r));
    return -1;
}

static int
check_depth(reader *r, int depth)
{
    if (depth < r->packer->max_depth)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "pseud: cannot unpack, msgpack nesting deeper than max_depth (%d)",
                 r->packer->max_depth);
    return -1;
}

static PyObject *decode_obj(reader *r, int depth);

static PyObject *
decode_array(reader *r, uint64_t n, int depth)
{
    if (check_depth(r, depth) < 0 || check_count(r, n, 1, "array") < 0)
        return NULL;
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (t == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *item = decode_obj(r, depth + 1);
        if (item == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, item);
    }
    return t;
}

static PyObject *
decode_map(reader *r, uint64_t n, int depth)
{
    if (check_depth(r, depth) < 0 || check_count(r, n, 2, "map") < 0)
        return NULL;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *k = decode_obj(r, depth + 1);
        if (k == NULL)
            goto error;
        PyObject *v = decode_obj(r, depth + 1);
        if (v == NULL) {
            Py_DECREF(k);
            goto error;
        }
        int rc = PyDict_SetItem(d, k, v);
        Py_DECREF(v);
        if (rc < 0) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError,
                             "pseud: unhashable msgpack map key of type %.100s",
                             Py_TYPE(k)->tp_name);
            }
            else {
                reraise_as_value_error("pseud: cannot use msgpack map key of "
                                       "type %.100s", Py_TYPE(k)->tp_name);
            }
            Py_DECREF(k);
            goto error;
        }
        Py_DECREF(k);
    }
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

static PyObject *
decode_str(reader *r, uint64_t len)
{
    if (check_payload(r, len, "str") < 0)
        return NULL;
    const char *s = (const char *)r->p;
    r->p += len;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "strict");
}

static PyObject *
decode_bin(reader *r, uint64_t len)
{
    if (check_payload(r, len, "bin") < 0)
        return NULL;
    const char *s = (const char *)r->p;
    r->p += len;
    return PyBytes_FromStringAndSize(s, (Py_ssize_t)len);
}

static PyObject *
decode_ext(reader *r, uint64_t len)
{
    if (need(r, 1, "ext type") < 0)
        return NULL;
    int code = (int)(int8_t)r->p[0];
    r->p++;
    if (check_payload(r, len, "ext data") < 0)
        return NULL;
    PyObject *data = PyBytes_FromStringAndSize((const char *)r->p, (Py_ssize_t)len);
    if (data == NULL)
        return NULL;
    r->p += len;

    PackerObject *self = r->packer;
    PyObject *unpack = self->ext[EXT_INDEX(code)].unpack;
    PyObject *res;
    if (unpack == NULL) {
        PyObject *args[2];
        args[0] = PyLong_FromLong(code);
        if (args[0] == NULL) {
            Py_DECREF(data);
            return NULL;
        }
        args[1] = data;
        res = PyObject_Vectorcall(self->ext_type, args, 2, NULL);
        Py_DECREF(args[0]);
    }
    else {
        Py_INCREF(unpack);
        res = PyObject_CallOneArg(unpack, data);
        Py_DECREF(unpack);
        if (res == NULL)
            reraise_as_value_error("pseud: cannot unpack ext type %d", code);
    }
    Py_DECREF(data);
    return res;
}

static PyObject *
float_from_be32(const unsigned char *p)
{
    uint32_t u = (uint32_t)be_read(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return PyFloat_FromDouble((double)f);
}

static PyObject *
float_from_be64(const unsigned char *p)
{
    uint64_t u = be_read(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return PyFloat_FromDouble(d);
}

static PyObject *
decode_obj(reader *r, int depth)
{
    if (need(r, 1, "an object") < 0)
        return NULL;
    unsigned int b = *r->p++;
    uint64_t n;

    if (b <= 0x7f)
        return PyLong_FromLong((long)b);
    if (b >= 0xe0)
        return PyLong_FromLong((long)(int8_t)b);
    if (b <= 0x8f)
        return decode_map(r, b & 0x0f, depth);
    if (b <= 0x9f)
        return decode_array(r, b & 0x0f, depth);
    if (b <= 0xbf)
        return decode_str(r, b & 0x1f);

    switch (b) {
    case 0xc0:
        Py_RETURN_NONE;
    case 0xc2:
        Py_RETURN_FALSE;
    case 0xc3:
        Py_RETURN_TRUE;
    case 0xc4: case 0xc5: case 0xc6:
        if (read_uint(r, 1 << (b - 0xc4), &n, "bin length") < 0)
            return NULL;
        return decode_bin(r, n);
    case 0xc7: case 0xc8: case 0xc9:
        if (read_uint(r, 1 << (b - 0xc7), &n, "ext length") < 0)
            return NULL;
        return decode_ext(r, n);
    case 0xca:
        if (need(r, 4, "float32") < 0)
            return NULL;
        r->p += 4;
        return float_from_be32(r->p - 4);
    case 0xcb:
        if (need(r, 8, "float64") < 0)
            return NULL;
        r->p += 8;
        return float_from_be64(r->p - 8);
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if (read_uint(r, 1 << (b - 0xcc), &n, "uint") < 0)
            return NULL;
        return PyLong_FromUnsignedLongLong((unsigned long long)n);
    case 0xd0:
        if (read_uint(r, 1, &n, "int8") < 0)
            return NULL;
        return PyLong_FromLong((long)(int8_t)(uint8_t)n);
    case 0xd1:
        if (read_uint(r, 2, &n, "int16") < 0)
            return NULL;
        return PyLong_FromLong((long)(int16_t)(uint16_t)n);
    case 0xd2:
        if (read_uint(r, 4, &n, "int32") < 0)
            return NULL;
        return PyLong_FromLong((long)(int32_t)(uint32_t)n);
    case 0xd3:
        if (read_uint(r, 8, &n, "int64") < 0)
            return NULL;
        return PyLong_FromLongLong((long long)(int64_t)n);
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return decode_ext(r, (uint64_t)1 << (b - 0xd4));
    case 0xd9: case 0xda: case 0xdb:
        if (read_uint(r, 1 << (b - 0xd9), &n, "str length") < 0)
            return NULL;
        return decode_str(r, n);
    case 0xdc: case 0xdd:
        if (read_uint(r, 2 << (b - 0xdc), &n, "array length") < 0)
            return NULL;
        return decode_array(r, n, depth);
    case 0xde: case 0xdf:
        if (read_uint(r, 2 << (b - 0xde), &n, "map length") < 0)
            return NULL;
        return decode_map(r, n, depth);
    default:  /* 0xc1 */
        PyErr_Format(PyExc_ValueError,
                     "pseud: invalid msgpack data: reserved byte 0x%02x at offset %zu",
                     b, offset(r) - 1);
        return NULL;
    }
}

PyObject *
codec_unpack(PyObject *packer, const char *data, size_t len)
{
    pseud_state *st = pseud_state_of(packer);
    if (st == NULL)
        return NULL;
    if (!PyObject_TypeCheck(packer, st->Packer_Type)) {
        PyErr_Format(PyExc_TypeError, "pseud: expected a Packer, not %.100s",
                     Py_TYPE(packer)->tp_name);
        return NULL;
    }
    PackerObject *self = (PackerObject *)packer;
    if (packer_ready(self) < 0)
        return NULL;
    if (len == 0) {
        PyErr_SetString(PyExc_ValueError, "pseud: cannot unpack empty msgpack data");
        return NULL;
    }
    reader r;
    r.packer = self;
    r.start = r.p = (const unsigned char *)data;
    r.end = r.start + len;
    Py_INCREF(packer);
    PyObject *res = decode_obj(&r, 0);
    if (res != NULL && r.p != r.end) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: trailing data after msgpack object: %zu extra bytes "
                     "at offset %zu", left(&r), offset(&r));
        Py_CLEAR(res);
    }
    Py_DECREF(packer);
    return res;
}

/* ------------------------------------------------------------------------ */
/* the Packer type                                                          */

static PyObject *
Packer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    if (st->ExtType == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: module not initialised");
        return NULL;
    }
    PackerObject *self = (PackerObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->max_depth = PSEUD_DEFAULT_MAX_DEPTH;
    self->ext_type = Py_NewRef(st->ExtType);
    self->type_cache = PyDict_New();
    if (self->type_cache == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Packer_init(PackerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"translation_table", "max_depth", NULL};
    PyObject *table = Py_None;
    int max_depth = PSEUD_DEFAULT_MAX_DEPTH;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Oi:Packer", kwlist,
                                     &table, &max_depth))
        return -1;
    if (max_depth < 0 || max_depth > PSEUD_MAX_DEPTH_LIMIT) {
        PyErr_Format(PyExc_ValueError, "pseud: max_depth must be within 0..%d, got %d",
                     PSEUD_MAX_DEPTH_LIMIT, max_depth);
        return -1;
    }
    if (packer_ready(self) < 0)
        return -1;
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return -1;

    packer_clear_entries(self);
    PyDict_Clear(self->type_cache);
    self->max_depth = max_depth;

    PyObject *defaults = PyObject_GetAttrString((PyObject *)st->Packer_Type,
                                                "default_translation_table");
    if (defaults == NULL)
        return -1;
    int rc = packer_merge_table(self, defaults);
    Py_DECREF(defaults);
    if (rc < 0)
        return -1;
    if (table != Py_None && packer_merge_table(self, table) < 0)
        return -1;
    return 0;
}

static int
Packer_traverse(PackerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (int i = 0; i < EXT_SLOTS; i++) {
        Py_VISIT(self->ext[i].cls);
        Py_VISIT(self->ext[i].pack);
        Py_VISIT(self->ext[i].unpack);
    }
    Py_VISIT(self->ext_type);
    Py_VISIT(self->type_cache);
    return 0;
}

static int
Packer_clear(PackerObject *self)
{
    packer_clear_entries(self);
    Py_CLEAR(self->ext_type);
    Py_CLEAR(self->type_cache);
    return 0;
}

static void
Packer_dealloc(PackerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Packer_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
Packer_packb(PackerObject *self, PyObject *obj)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    PyObject *res = NULL;
    if (codec_pack((PyObject *)self, obj, &sbuf) == 0)
        res = PyBytes_FromStringAndSize(sbuf.data, (Py_ssize_t)sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    return res;
}

static PyObject *
Packer_unpackb(PackerObject *self, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *res = codec_unpack((PyObject *)self, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return res;
}

static PyObject *
Packer_register_ext_handler(PackerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "cls", "pack", "unpack", NULL};
    PyObject *code_obj, *cls, *pack, *unpack;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO:register_ext_handler", kwlist,
                                     &code_obj, &cls, &pack, &unpack))
        return NULL;
    if (packer_ready(self) < 0)
        return NULL;
    int code;
    if (parse_ext_code(code_obj, &code) < 0)
        return NULL;
    if (self->ext[EXT_INDEX(code)].cls != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: ext type code %d is already in the translation table",
                     code);
        return NULL;
    }
    if (packer_set_entry(self, code, cls, pack, unpack) < 0)
        return NULL;
    PyDict_Clear(self->type_cache);
    Py_RETURN_NONE;
}

static PyObject *
Packer_get_translation_table(PackerObject *self, void *closure)
{
    (void)closure;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (int i = 0; i < EXT_SLOTS; i++) {
        ext_entry *e = &self->ext[i];
        if (e->cls == NULL)
            continue;
        PyObject *key = PyLong_FromLong(i - 128);
        PyObject *val = key == NULL ? NULL
            : PyTuple_Pack(3, e->cls, e->pack, e->unpack);
        int rc = val == NULL ? -1 : PyDict_SetItem(d, key, val);
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

static PyObject *
Packer_get_max_depth(PackerObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->max_depth);
}

static PyMethodDef Packer_methods[] = {
    {"packb", (PyCFunction)Packer_packb, METH_O,
     "packb(obj) -> bytes\n\nEncode obj as one msgpack object."},
    {"unpackb", (PyCFunction)Packer_unpackb, METH_O,
     "unpackb(data) -> object\n\nDecode the single msgpack object filling the "
     "bytes-like data. Raises ValueError on malformed input."},
    {"register_ext_handler", (PyCFunction)(void (*)(void))Packer_register_ext_handler,
     METH_VARARGS | METH_KEYWORDS,
     "register_ext_handler(code, cls, pack, unpack)\n\nAdd an ext type: instances "
     "of cls are packed as ext `code` with pack(obj) -> bytes and decoded with "
     "unpack(bytes). ValueError if code is already used."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Packer_getset[] = {
    {"translation_table", (getter)Packer_get_translation_table, NULL,
     "{code: (cls, pack, unpack)} (a copy; use register_ext_handler to add).", NULL},
    {"max_depth", (getter)Packer_get_max_depth, NULL,
     "Deepest container nesting accepted when packing and unpacking.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Packer_doc,
"Packer(translation_table=None, max_depth=128)\n\n"
"msgpack encoder/decoder. translation_table maps ext codes to\n"
"(cls, pack, unpack) and is merged over the defaults (123 tzinfo,\n"
"124 timedelta, 125 datetime, 126 date, carried as pickles).");

static PyType_Slot Packer_slots[] = {
    {Py_tp_new, Packer_new},
    {Py_tp_init, Packer_init},
    {Py_tp_dealloc, Packer_dealloc},
    {Py_tp_traverse, Packer_traverse},
    {Py_tp_clear, Packer_clear},
    {Py_tp_methods, Packer_methods},
    {Py_tp_getset, Packer_getset},
    {Py_tp_doc, (void *)Packer_doc},
    {0, NULL},
};

static PyType_Spec Packer_spec = {
    .name = "pseud._pseud.Packer",
    .basicsize = sizeof(PackerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Packer_slots,
};

/* ------------------------------------------------------------------------ */
/* restricted unpickling of the datetime ext types                          */

/* find_class(module, name), stored in the unpickler class dict. Its self is
 * a tuple (allowed, UnpicklingError), allowed a dict (module, name) -> obj.
 * A builtin function is no descriptor, so instance.find_class(m, n) calls
 * it with just (m, n). */
static PyObject *
safe_find_class(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find_class() takes 2 arguments");
        return NULL;
    }
    PyObject *allowed = PyTuple_GET_ITEM(self, 0);
    PyObject *key = PyTuple_Pack(2, args[0], args[1]);
    if (key == NULL)
        return NULL;
    PyObject *obj = PyDict_GetItemWithError(allowed, key);
    Py_DECREF(key);
    if (obj != NULL)
        return Py_NewRef(obj);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError))
            return NULL;
        PyErr_Clear();   /* unhashable names: refused below */
    }
    PyErr_Format(PyTuple_GET_ITEM(self, 1),
                 "pseud: refusing to unpickle %.200R.%.200R: only datetime "
                 "classes may be decoded", args[0], args[1]);
    return NULL;
}

static PyMethodDef safe_find_class_def = {
    "find_class", (PyCFunction)(void (*)(void))safe_find_class, METH_FASTCALL,
    "Resolve only the datetime classes; refuse anything else.",
};

/* Stand-in for ZoneInfo(key) and ZoneInfo._unpickle(key, from_cache):
 * the key must be a plain, short str (ZoneInfo hashes it for its cache, and
 * a crafted tuple key could make that hashing crash or take forever), and
 * the cached constructor is always used (no_cache would read a tz file for
 * every message). self is the ZoneInfo class. */
static PyObject *
safe_zoneinfo(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2 || !PyUnicode_CheckExact(args[0])
        || PyUnicode_GET_LENGTH(args[0]) > 256) {
        PyErr_SetString(PyExc_ValueError, "pseud: a pickled ZoneInfo needs a str key");
        return NULL;
    }
    return PyObject_CallOneArg(self, args[0]);
}

static PyMethodDef safe_zoneinfo_def = {
    "ZoneInfo", (PyCFunction)(void (*)(void))safe_zoneinfo, METH_FASTCALL,
    "ZoneInfo(key) for pickles: str keys only, cached.",
};

/* Stand-in for builtins.getattr in pickles: the C pickler writes
 * ZoneInfo._unpickle as getattr(ZoneInfo, '_unpickle'). Only that lookup is
 * allowed. self is (ZoneInfo, ZoneInfo._unpickle, UnpicklingError). */
static PyObject *
safe_getattr(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && args[0] == PyTuple_GET_ITEM(self, 0)
        && PyUnicode_Check(args[1])
        && PyUnicode_CompareWithASCIIString(args[1], "_unpickle") == 0)
        return Py_NewRef(PyTuple_GET_ITEM(self, 1));
    PyErr_SetString(PyTuple_GET_ITEM(self, 2),
                    "pseud: refusing to unpickle a getattr other than "
                    "ZoneInfo._unpickle");
    return NULL;
}

static PyMethodDef safe_getattr_def = {
    "getattr", (PyCFunction)(void (*)(void))safe_getattr, METH_FASTCALL,
    "getattr restricted to ZoneInfo._unpickle.",
};

/* Stand-in for _codecs.encode in protocol 2 pickles, which carry the
 * datetime state as encode(str, 'latin1'). self is UnpicklingError. */
static PyObject *
safe_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && PyUnicode_Check(args[0]) && PyUnicode_Check(args[1])
        && (PyUnicode_CompareWithASCIIString(args[1], "latin1") == 0
            || PyUnicode_CompareWithASCIIString(args[1], "latin-1") == 0))
        return PyUnicode_AsLatin1String(args[0]);
    PyErr_SetString(self, "pseud: refusing to unpickle an encode other than "
                          "str to latin1");
    return NULL;
}

static PyMethodDef safe_encode_def = {
    "encode", (PyCFunction)(void (*)(void))safe_encode, METH_FASTCALL,
    "codecs.encode restricted to latin1.",
};

/* Structural check of a pickle before _pickle runs it. find_class decides
 * what may be built; this bounds what the bytes may make _pickle allocate:
 * every counted argument must fit in the data, and memo indices may not
 * exceed the data length (_pickle grows its memo table to the index it is
 * given, so `r\xff\xff\xff\x7f` alone would cost gigabytes). Opcodes no
 * datetime pickle needs (persistent ids, extension registry, out-of-band
 * buffers, bytearray) are refused. Returns 0, or -1 with ValueError set. */
enum { PK_BAD, PK_NONE, PK_FIXED, PK_COUNTED, PK_LINES, PK_STOP };

#define PICKLE_MAX 1024     /* the largest datetime pickle is about 200 bytes */

typedef struct {
    unsigned char kind;
    unsigned char size;     /* PK_FIXED: arg bytes; PK_COUNTED: length bytes;
                               PK_LINES: number of lines */
    unsigned char memo;     /* the arg is a memo index to bound */
} pickle_op;

static int
pickle_prescan(const unsigned char *p, size_t len)
{
    static pickle_op ops[256];
    static int ready = 0;
    if (!ready) {
        /* only what datetime, date, time, timedelta, timezone and ZoneInfo
         * pickles use: no sets, dicts, lists, DUP or object building (they
         * let a few bytes nest deep or share sub-objects exponentially) */
        static const char none[] = "(NRt)\x85\x86\x87\x88\x89\x93\x94";
        for (const char *c = none; *c; c++)
            ops[(unsigned char)*c].kind = PK_NONE;
        static const struct { char op; unsigned char size, memo; } fixed[] = {
            {'J', 4, 0}, {'K', 1, 0}, {'M', 2, 0}, {'h', 1, 0}, {'j', 4, 0},
            {'q', 1, 0}, {'r', 4, 1}, {'G', 8, 0}, {'\x80', 1, 0},
            {'\x95', 8, 0},
        };
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            pickle_op *o = &ops[(unsigned char)fixed[i].op];
            o->kind = PK_FIXED;
            o->size = fixed[i].size;
            o->memo = fixed[i].memo;
        }
        static const struct { char op; unsigned char size; } counted[] = {
            {'T', 4}, {'U', 1}, {'X', 4}, {'\x8a', 1}, {'\x8b', 4}, {'B', 4},
            {'C', 1}, {'\x8c', 1}, {'\x8d', 8}, {'\x8e', 8},
        };
        for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
            ops[(unsigned char)counted[i].op].kind = PK_COUNTED;
            ops[(unsigned char)counted[i].op].size = counted[i].size;
        }
        static const char lines1[] = "FILSVgp";
        for (const char *c = lines1; *c; c++) {
            ops[(unsigned char)*c].kind = PK_LINES;
            ops[(unsigned char)*c].size = 1;
        }
        ops['c'].kind = PK_LINES;
        ops['c'].size = 2;
        ops['p'].memo = 1;
        ops['.'].kind = PK_STOP;
        ready = 1;   /* only ever runs with the GIL held */
    }

    if (len > PICKLE_MAX) {
        PyErr_SetString(PyExc_ValueError, "pseud: pickle too long for a datetime object");
        return -1;
    }
    const unsigned char *end = p + len;
    while (p < end) {
        unsigned char code = *p++;
        const pickle_op *o = &ops[code];
        size_t rest = (size_t)(end - p);
        switch (o->kind) {
        case PK_STOP:
            return 0;
        case PK_NONE:
            break;
        case PK_FIXED: {
            if (rest < o->size)
                goto truncated;
            if (o->memo) {
                /* LONG_BINPUT: 4-byte little-endian index */
                uint32_t idx = (uint32_t)p[0] | (uint32_t)p[1] << 8
                               | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                if (idx > len)
                    goto memo;
            }
            p += o->size;
            break;
        }
        case PK_COUNTED: {
            if (rest < o->size)
                goto truncated;
            uint64_t n = 0;
            for (int i = o->size - 1; i >= 0; i--)
                n = (n << 8) | p[i];       /* little-endian */
            if (o->size == 4 && code != 'X' && code != 'B' && code != 0x8b
                && (n & 0x80000000u))
                goto bad;                  /* BINSTRING's length is signed */
            if (code == 0x8b && (n & 0x80000000u))
                goto bad;                  /* so is LONG4's */
            p += o->size;
            if (n > (uint64_t)(end - p))
                goto truncated;
            p += n;
            break;
        }
        case PK_LINES:
            for (int line = 0; line < o->size; line++) {
                const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
                if (nl == NULL)
                    goto truncated;
                if (o->memo) {
                    /* PUT: decimal index */
                    uint64_t idx = 0;
                    for (const unsigned char *d = p; d < nl; d++) {
                        if (*d < '0' || *d > '9')
                            goto bad;
                        idx = idx * 10 + (uint64_t)(*d - '0');
                        if (idx > len)
                            goto memo;
                    }
                }
                p = nl + 1;
            }
            break;
        default:
            PyErr_Format(PyExc_ValueError,
                         "pseud: pickle opcode 0x%02x is not accepted", code);
            return -1;
        }
    }
truncated:
    PyErr_SetString(PyExc_ValueError, "pseud: truncated pickle");
    return -1;
memo:
    PyErr_SetString(PyExc_ValueError, "pseud: pickle memo index out of range");
    return -1;
bad:
    PyErr_SetString(PyExc_ValueError, "pseud: malformed pickle");
    return -1;
}

/* The default unpack function of ext 123..126. self is a tuple
 * (SafeUnpickler, io.BytesIO, expected class). */
static PyObject *
safe_unpickle(PyObject *self, PyObject *data)
{
    PyObject *unpickler_cls = PyTuple_GET_ITEM(self, 0);
    PyObject *bytesio = PyTuple_GET_ITEM(self, 1);
    PyObject *expected = PyTuple_GET_ITEM(self, 2);

    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int ok = pickle_prescan(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (ok < 0)
        return NULL;

    PyObject *file = PyObject_CallOneArg(bytesio, data);
    if (file == NULL)
        return NULL;
    PyObject *u = PyObject_CallOneArg(unpickler_cls, file);
    Py_DECREF(file);
    if (u == NULL)
        return NULL;
    PyObject *res = PyObject_CallMethod(u, "load", NULL);
    Py_DECREF(u);
    if (res == NULL)
        return NULL;
    ok = PyObject_IsInstance(res, expected);
    if (ok <= 0) {
        if (ok == 0)
            PyErr_Format(PyExc_ValueError,
                         "pseud: pickle gave a %.100s, expected a %.100s",
                         Py_TYPE(res)->tp_name, ((PyTypeObject *)expected)->tp_name);
        Py_DECREF(res);
        return NULL;
    }
    return res;
}

static PyMethodDef safe_unpickle_def = {
    "safe_unpickle", (PyCFunction)safe_unpickle, METH_O,
    "Decode a pickle of a datetime object, refusing any other class.",
};

static int
allow(PyObject *allowed, const char *module, const char *name, PyObject *obj)
{
    PyObject *key = Py_BuildValue("(ss)", module, name);
    if (key == NULL)
        return -1;
    int rc = PyDict_SetItem(allowed, key, obj);
    Py_DECREF(key);
    return rc;
}

static int
allow_attr(PyObject *allowed, PyObject *mod, const char *module, const char *name)
{
    PyObject *obj = PyObject_GetAttrString(mod, name);
    if (obj == NULL)
        return -1;
    int rc = allow(allowed, module, name, obj);
    Py_DECREF(obj);
    return rc;
}

/* Add the zoneinfo entries, if zoneinfo is importable. */
static int
allow_zoneinfo(PyObject *allowed, PyObject *unpickling_error)
{
    PyObject *zoneinfo = PyImport_ImportModule("zoneinfo");
    if (zoneinfo == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ImportError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    PyObject *zi = PyObject_GetAttrString(zoneinfo, "ZoneInfo");
    Py_DECREF(zoneinfo);
    if (zi == NULL)
        return -1;
    int rc = -1;
    PyObject *getter = NULL, *self = NULL;
    /* both ZoneInfo and ZoneInfo._unpickle resolve to the checked stand-in */
    PyObject *unpickle = PyCFunction_New(&safe_zoneinfo_def, zi);
    if (unpickle == NULL)
        goto done;
    self = PyTuple_Pack(3, unpickle, unpickle, unpickling_error);
    if (self == NULL)
        goto done;
    getter = PyCFunction_New(&safe_getattr_def, self);
    if (getter == NULL)
        goto done;
    if (allow(allowed, "zoneinfo", "ZoneInfo", unpickle) < 0
        || allow(allowed, "zoneinfo", "ZoneInfo._unpickle", unpickle) < 0
        || allow(allowed, "builtins", "getattr", getter) < 0
        || allow(allowed, "__builtin__", "getattr", getter) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(getter);
    Py_XDECREF(self);
    Py_XDECREF(unpickle);
    Py_DECREF(zi);
    return rc;
}

/* Build SafeUnpickler: a _pickle.Unpickler with the restricted find_class. */
static PyObject *
make_safe_unpickler(PyObject *datetime_mod)
{
    PyObject *pickle = NULL, *base = NULL, *err = NULL, *allowed = NULL;
    PyObject *self = NULL, *find_class = NULL, *encode = NULL, *ns = NULL;
    PyObject *cls = NULL;

    pickle = PyImport_ImportModule("_pickle");
    if (pickle == NULL)
        goto done;
    base = PyObject_GetAttrString(pickle, "Unpickler");
    if (base == NULL)
        goto done;
    err = PyObject_GetAttrString(pickle, "UnpicklingError");
    if (err == NULL)
        goto done;
    allowed = PyDict_New();
    if (allowed == NULL)
        goto done;
    static const char *names[] = {"datetime", "date", "time", "timedelta",
                                  "timezone", "tzinfo"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (allow_attr(allowed, datetime_mod, "datetime", names[i]) < 0)
            goto done;
    }
    if (allow_zoneinfo(allowed, err) < 0)
        goto done;
    encode = PyCFunction_New(&safe_encode_def, err);
    if (encode == NULL || allow(allowed, "_codecs", "encode", encode) < 0)
        goto done;

    self = PyTuple_Pack(2, allowed, err);
    if (self == NULL)
        goto done;
    find_class = PyCFunction_New(&safe_find_class_def, self);
    if (find_class == NULL)
        goto done;
    ns = Py_BuildValue("{sssO}", "__module__", "pseud._pseud", "find_class", find_class);
    if (ns == NULL)
        goto done;
    cls = PyObject_CallFunction((PyObject *)&PyType_Type, "s(O)O",
                                "SafeUnpickler", base, ns);
done:
    Py_XDECREF(pickle);
    Py_XDECREF(base);
    Py_XDECREF(err);
    Py_XDECREF(allowed);
    Py_XDECREF(self);
    Py_XDECREF(find_class);
    Py_XDECREF(encode);
    Py_XDECREF(ns);
    return cls;
}

/* {123: (tzinfo, dumps, unpickle), 124: timedelta, 125: datetime, 126: date} */
static PyObject *
make_default_table(void)
{
    PyObject *datetime = NULL, *pickle = NULL, *functools = NULL, *io = NULL;
    PyObject *dumps = NULL, *bytesio = NULL, *unpickler = NULL, *table = NULL;
    PyObject *result = NULL;

    datetime = PyImport_ImportModule("datetime");
    pickle = datetime ? PyImport_ImportModule("pickle") : NULL;
    functools = pickle ? PyImport_ImportModule("functools") : NULL;
    io = functools ? PyImport_ImportModule("io") : NULL;
    if (io == NULL)
        goto done;
    /* functools.partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL) */
    {
        PyObject *pdumps = PyObject_GetAttrString(pickle, "dumps");
        PyObject *proto = pdumps ? PyObject_GetAttrString(pickle, "HIGHEST_PROTOCOL") : NULL;
        PyObject *partial = proto ? PyObject_GetAttrString(functools, "partial") : NULL;
        PyObject *pargs = partial ? PyTuple_Pack(1, pdumps) : NULL;
        PyObject *kw = pargs ? Py_BuildValue("{sO}", "protocol", proto) : NULL;
        if (kw != NULL)
            dumps = PyObject_Call(partial, pargs, kw);
        Py_XDECREF(pdumps);
        Py_XDECREF(proto);
        Py_XDECREF(partial);
        Py_XDECREF(pargs);
        Py_XDECREF(kw);
        if (dumps == NULL)
            goto done;
    }
    bytesio = PyObject_GetAttrString(io, "BytesIO");
    if (bytesio == NULL)
        goto done;
    unpickler = make_safe_unpickler(datetime);
    if (unpickler == NULL)
        goto done;
    table = PyDict_New();
    if (table == NULL)
        goto done;

    static const struct { int code; const char *name; } defaults[] = {
        {123, "tzinfo"}, {124, "timedelta"}, {125, "datetime"}, {126, "date"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        PyObject *cls = PyObject_GetAttrString(datetime, defaults[i].name);
        PyObject *self = cls ? PyTuple_Pack(3, unpickler, bytesio, cls) : NULL;
        PyObject *unpack = self ? PyCFunction_New(&safe_unpickle_def, self) : NULL;
        PyObject *entry = unpack ? PyTuple_Pack(3, cls, dumps, unpack) : NULL;
        PyObject *key = entry ? PyLong_FromLong(defaults[i].code) : NULL;
        int rc = key ? PyDict_SetItem(table, key, entry) : -1;
        Py_XDECREF(cls);
        Py_XDECREF(self);
        Py_XDECREF(unpack);
        Py_XDECREF(entry);
        Py_XDECREF(key);
        if (rc < 0)
            goto done;
    }
    result = Py_NewRef(table);
done:
    Py_XDECREF(datetime);
    Py_XDECREF(pickle);
    Py_XDECREF(functools);
    Py_XDECREF(io);
    Py_XDECREF(dumps);
    Py_XDECREF(bytesio);
    Py_XDECREF(unpickler);
    Py_XDECREF(table);
    return result;
}

static PyObject *
make_ext_type(void)
{
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL)
        return NULL;
    PyObject *namedtuple = PyObject_GetAttrString(collections, "namedtuple");
    Py_DECREF(collections);
    if (namedtuple == NULL)
        return NULL;
    PyObject *res = NULL;
    PyObject *args = Py_BuildValue("(ss)", "ExtType", "code data");
    /* pseud.packer re-exports it, so its instances pickle by that name */
    PyObject *kw = args ? Py_BuildValue("{ss}", "module", "pseud.packer") : NULL;
    if (kw != NULL)
        res = PyObject_Call(namedtuple, args, kw);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(namedtuple);
    if (res != NULL && !PyType_Check(res)) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "pseud: namedtuple did not return a type");
        return NULL;
    }
    return res;
}

int
codec_init_module(PyObject *module, pseud_state *st)
{
    st->ExtType = make_ext_type();
    if (st->ExtType == NULL || PyModule_AddObjectRef(module, "ExtType", st->ExtType) < 0)
        return -1;

    st->Packer_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Packer_spec, NULL);
    if (st->Packer_Type == NULL)
        return -1;

    PyObject *defaults = make_default_table();
    if (defaults == NULL)
        return -1;
    PyObject *proxy = PyDictProxy_New(defaults);
    Py_DECREF(defaults);
    if (proxy == NULL)
        return -1;
    /* the type is immutable from Python: set the attribute in its dict */
    int rc = PyDict_SetItemString(st->Packer_Type->tp_dict,
                                  "default_translation_table", proxy);
    Py_DECREF(proxy);
    if (rc < 0)
        return -1;
    PyType_Modified(st->Packer_Type);

    if (PyModule_AddObjectRef(module, "Packer", (PyObject *)st->Packer_Type) < 0)
        return -1;
    st->default_packer = PyObject_CallNoArgs((PyObject *)st->Packer_Type);
    if (st->default_packer == NULL)
        return -1;
    return 0;
}
