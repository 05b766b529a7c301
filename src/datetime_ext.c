/* The default ext types 123-126: tzinfo, timedelta, datetime and date as
 * pickles (upstream pseud's wire format, docs/protocol.rst). Packing is
 * pickle.dumps; decoding is security-critical, as the pickle comes from the
 * network: a structural pre-scan bounds what the bytes can make _pickle
 * allocate, and a restricted find_class resolves only an allowlist of
 * classes and checked stand-ins, so no pickle can run arbitrary code. */
#include "datetime_ext.h"

#include <stdint.h>
#include <string.h>

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
enum { OPARG_BAD, OPARG_NONE, OPARG_FIXED, OPARG_COUNTED, OPARG_LINES, OPARG_STOP };

#define PICKLE_MAX 1024     /* the largest datetime pickle is about 200 bytes */

typedef struct {
    unsigned char kind;
    unsigned char size;     /* OPARG_FIXED: arg bytes; OPARG_COUNTED: length bytes;
                               OPARG_LINES: number of lines */
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
            ops[(unsigned char)*c].kind = OPARG_NONE;
        static const struct { char op; unsigned char size, memo; } fixed[] = {
            {'J', 4, 0}, {'K', 1, 0}, {'M', 2, 0}, {'h', 1, 0}, {'j', 4, 0},
            {'q', 1, 0}, {'r', 4, 1}, {'G', 8, 0}, {'\x80', 1, 0},
            {'\x95', 8, 0},
        };
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            pickle_op *o = &ops[(unsigned char)fixed[i].op];
            o->kind = OPARG_FIXED;
            o->size = fixed[i].size;
            o->memo = fixed[i].memo;
        }
        static const struct { char op; unsigned char size; } counted[] = {
            {'T', 4}, {'U', 1}, {'X', 4}, {'\x8a', 1}, {'\x8b', 4}, {'B', 4},
            {'C', 1}, {'\x8c', 1}, {'\x8d', 8}, {'\x8e', 8},
        };
        for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
            ops[(unsigned char)counted[i].op].kind = OPARG_COUNTED;
            ops[(unsigned char)counted[i].op].size = counted[i].size;
        }
        static const char lines1[] = "FILSVgp";
        for (const char *c = lines1; *c; c++) {
            ops[(unsigned char)*c].kind = OPARG_LINES;
            ops[(unsigned char)*c].size = 1;
        }
        ops['c'].kind = OPARG_LINES;
        ops['c'].size = 2;
        ops['p'].memo = 1;
        ops['.'].kind = OPARG_STOP;
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
        case OPARG_STOP:
            return 0;
        case OPARG_NONE:
            break;
        case OPARG_FIXED: {
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
        case OPARG_COUNTED: {
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
        case OPARG_LINES:
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
PyObject *
datetime_ext_default_table(void)
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
