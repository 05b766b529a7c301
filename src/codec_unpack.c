/* msgpack -> Python objects (codec_unpack, Packer.unpackb): our own bounded
 * reader, because the input comes from the network. Every count and length
 * read from the input is checked against the bytes left before any container
 * or buffer is created, so hostile input costs O(len) memory; nesting is
 * bounded by the Packer's max_depth and kept on a heap stack, not the C
 * stack (a greenlet may decode 10000 levels); anything truncated, trailing or
 * reserved is a ValueError. Ext types go to the translation table's unpack
 * function (datetime_ext.c for 123-126) or become ExtType. */
#include "packer.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

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

/* read_item's *container: what a NULL without an exception means */
enum { ITEM_VALUE, ITEM_ARRAY, ITEM_MAP };

/* Read one scalar (a new reference), or only the header of an array or map:
 * then NULL, no exception, *container ITEM_ARRAY or ITEM_MAP and *count its
 * length. NULL with ValueError for malformed input. */
static PyObject *
read_item(reader *r, int *container, uint64_t *count)
{
    *container = ITEM_VALUE;
    if (need(r, 1, "an object") < 0)
        return NULL;
    unsigned int b = *r->p++;
    uint64_t n;

    if (b <= 0x7f)
        return PyLong_FromLong((long)b);
    if (b >= 0xe0)
        return PyLong_FromLong((long)(int8_t)b);
    if (b <= 0x8f) {
        *container = ITEM_MAP;
        *count = b & 0x0f;
        return NULL;
    }
    if (b <= 0x9f) {
        *container = ITEM_ARRAY;
        *count = b & 0x0f;
        return NULL;
    }
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
        if (read_uint(r, 2 << (b - 0xdc), count, "array length") < 0)
            return NULL;
        *container = ITEM_ARRAY;
        return NULL;
    case 0xde: case 0xdf:
        if (read_uint(r, 2 << (b - 0xde), count, "map length") < 0)
            return NULL;
        *container = ITEM_MAP;
        return NULL;
    default:  /* 0xc1 */
        PyErr_Format(PyExc_ValueError,
                     "pseud: invalid msgpack data: reserved byte 0x%02x at offset %zu",
                     b, offset(r) - 1);
        return NULL;
    }
}

/* One open container while decoding: the stack of these lives on the heap,
 * so nesting up to max_depth (at most PSEUD_MAX_DEPTH_LIMIT) costs no C
 * stack, whatever greenlet or thread decodes. */
typedef struct {
    PyObject *obj;      /* the tuple or dict being filled */
    uint64_t n;         /* items (pairs for a map) it will hold */
    uint64_t done;
    PyObject *key;      /* a map's key waiting for its value */
} open_container;

/* the first levels live in the struct (no allocation for usual messages),
 * deeper ones in a heap array */
#define INLINE_LEVELS 16

typedef struct {
    open_container *items;      /* inline, or on the heap once it grew */
    int len, cap;
    open_container inline_items[INLINE_LEVELS];
} container_stack;

static void
container_stack_clear(container_stack *s)
{
    for (int i = 0; i < s->len; i++) {
        Py_XDECREF(s->items[i].obj);
        Py_XDECREF(s->items[i].key);
    }
    if (s->items != s->inline_items)
        PyMem_Free(s->items);
    s->items = s->inline_items;
    s->len = 0;
    s->cap = INLINE_LEVELS;
}

/* Open a container of n items (n pairs if is_map), or, if it is empty,
 * return it complete in *done. Returns 0, or -1 with an exception set. */
static int
open_new(reader *r, container_stack *s, int is_map, uint64_t n, PyObject **done)
{
    *done = NULL;
    /* the depth of this container is the number of those around it */
    if (check_depth(r, s->len) < 0
        || check_count(r, n, is_map ? 2 : 1, is_map ? "map" : "array") < 0)
        return -1;
    PyObject *obj = is_map ? PyDict_New() : PyTuple_New((Py_ssize_t)n);
    if (obj == NULL)
        return -1;
    if (n == 0) {
        *done = obj;
        return 0;
    }
    if (s->len == s->cap) {
        int cap = s->cap * 2;
        open_container *items;
        if (s->items == s->inline_items) {
            items = PyMem_Malloc((size_t)cap * sizeof *items);
            if (items != NULL)
                memcpy(items, s->inline_items, sizeof s->inline_items);
        }
        else {
            items = PyMem_Realloc(s->items, (size_t)cap * sizeof *items);
        }
        if (items == NULL) {
            Py_DECREF(obj);
            PyErr_NoMemory();
            return -1;
        }
        s->items = items;
        s->cap = cap;
    }
    open_container *c = &s->items[s->len++];
    c->obj = obj;
    c->n = n;
    c->done = 0;
    c->key = NULL;
    return 0;
}

/* Put `value` (a new reference, consumed) into the innermost open
 * container. Returns 1 with the container, closed, in *full if that filled
 * it (the caller then puts it into the next one out), 0 if it is still
 * open, -1 with an exception set. */
static int
put(container_stack *s, PyObject *value, PyObject **full)
{
    open_container *c = &s->items[s->len - 1];
    if (PyTuple_Check(c->obj)) {
        PyTuple_SET_ITEM(c->obj, (Py_ssize_t)c->done, value);
    }
    else if (c->key == NULL) {
        c->key = value;
        return 0;
    }
    else {
        PyObject *k = c->key;
        c->key = NULL;
        int rc = PyDict_SetItem(c->obj, k, value);
        Py_DECREF(value);
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
            return -1;
        }
        Py_DECREF(k);
    }
    if (++c->done < c->n)
        return 0;
    *full = c->obj;
    s->len--;
    return 1;
}

/* Decode one object, iteratively. */
static PyObject *
decode(reader *r)
{
    container_stack s;
    s.items = s.inline_items;
    s.len = 0;
    s.cap = INLINE_LEVELS;
    for (;;) {
        int container;
        uint64_t n = 0;
        PyObject *value = read_item(r, &container, &n);
        if (value == NULL) {
            if (container == ITEM_VALUE
                || open_new(r, &s, container == ITEM_MAP, n, &value) < 0)
                goto error;
            if (value == NULL)
                continue;           /* opened: read its first item */
        }
        /* close every container this value completes */
        while (s.len > 0) {
            int closed = put(&s, value, &value);
            if (closed < 0)
                goto error;
            if (closed == 0)
                break;
        }
        if (s.len == 0 && value != NULL) {
            if (s.items != s.inline_items)
                PyMem_Free(s.items);
            return value;
        }
    }
error:
    container_stack_clear(&s);
    return NULL;
}

PyObject *
codec_unpack_first(PyObject *packer, const char *data, size_t len, size_t *used)
{
    PackerObject *self = packer_checked(packer);
    if (self == NULL)
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
    PyObject *res = decode(&r);
    Py_DECREF(packer);
    *used = offset(&r);
    return res;
}

PyObject *
codec_trailing_message(size_t extra, size_t at)
{
    return PyUnicode_FromFormat("pseud: trailing data after msgpack object: %zu extra "
                                "bytes at offset %zu", extra, at);
}

void
codec_trailing_error(size_t extra, size_t at)
{
    PyObject *msg = codec_trailing_message(extra, at);
    if (msg != NULL) {
        PyErr_SetObject(PyExc_ValueError, msg);
        Py_DECREF(msg);
    }
}

PyObject *
codec_unpack(PyObject *packer, const char *data, size_t len)
{
    size_t used;
    PyObject *res = codec_unpack_first(packer, data, len, &used);
    if (res != NULL && used != len) {
        codec_trailing_error(len - used, used);
        Py_CLEAR(res);
    }
    return res;
}
