/* The default ext types 123-126: tzinfo, timedelta, datetime and date as
 * pickles (upstream pseud's wire format, docs/protocol.rst). Packing is
 * pickle.dumps at the highest protocol, as upstream does. Decoding is
 * security-critical, as the pickle comes from the network, and goes in
 * three steps: pickle_check.c verifies the opcodes over a model of the
 * stack (bounded size, nesting, memo; BUILD only on a fresh object of an
 * allowed class), _pickle runs them with a find_class that resolves only the
 * allowlist of tz_allow.c, and the result must be of the ext type's class
 * (a rebuilt tzlocal holding only tzlocal's attributes, a dateutil 2.x
 * tzfile converted from checked fields). No pickle can run code outside
 * that allowlist. */
#include "datetime_ext.h"
#include "tz_allow.h"

/* find_class(module, name), stored in the unpickler class dict. Its self is
 * a tuple (tz_allow state, UnpicklingError). A builtin function is no
 * descriptor, so instance.find_class(m, n) calls it with just (m, n). */
static PyObject *
safe_find_class(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find_class() takes 2 arguments");
        return NULL;
    }
    PyObject *obj;
    int found = tz_allow_lookup(PyTuple_GET_ITEM(self, 0), args[0], args[1], &obj);
    if (found != 0)
        return obj;     /* or NULL, with the error of loading the allowlist */
    if (PyUnicode_Check(args[0]) && PyUnicode_Check(args[1]))
        PyErr_Format(PyTuple_GET_ITEM(self, 1),
                     "pseud: refusing to unpickle %.200U.%.200U: not in the "
                     "allowlist of datetime and tzinfo classes (docs/protocol.rst; "
                     "use a translation_table entry for other classes)",
                     args[0], args[1]);
    else
        PyErr_SetString(PyTuple_GET_ITEM(self, 1),
                        "pseud: refusing to unpickle a global not named by strings");
    return NULL;
}

static PyMethodDef safe_find_class_def = {
    "find_class", (PyCFunction)(void (*)(void))safe_find_class, METH_FASTCALL,
    "Resolve only the datetime classes; refuse anything else.",
};

/* The default unpack function of ext 123..126. self is a tuple
 * (SafeUnpickler, io.BytesIO, expected class, tz_allow state, the
 * unpickler's keyword arguments). */
static PyObject *
safe_unpickle(PyObject *self, PyObject *data)
{
    PyObject *unpickler_cls = PyTuple_GET_ITEM(self, 0);
    PyObject *bytesio = PyTuple_GET_ITEM(self, 1);
    PyObject *expected = PyTuple_GET_ITEM(self, 2);

    /* immutable bytes: what is checked is what _pickle reads (a caller may
     * hand this function a bytearray) */
    PyObject *bytes = PyBytes_FromObject(data);
    if (bytes == NULL)
        return NULL;
    int ok = pickle_check((const unsigned char *)PyBytes_AS_STRING(bytes),
                          (size_t)PyBytes_GET_SIZE(bytes), tz_allow_classes,
                          tz_allow_n_classes);
    PyObject *file = ok < 0 ? NULL : PyObject_CallOneArg(bytesio, bytes);
    Py_DECREF(bytes);
    if (file == NULL)
        return NULL;
    /* latin1: Python 2 peers (gevent-era upstream) pickle the datetime
     * state as str, which the datetime constructors take in latin1 */
    PyObject *args = PyTuple_Pack(1, file);
    PyObject *u = args ? PyObject_Call(unpickler_cls, args, PyTuple_GET_ITEM(self, 4)) : NULL;
    Py_XDECREF(args);
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
    Py_SETREF(res, tz_allow_finish(PyTuple_GET_ITEM(self, 3), res));
    return res;
}

static PyMethodDef safe_unpickle_def = {
    "safe_unpickle", (PyCFunction)safe_unpickle, METH_O,
    "Decode a pickle of a datetime object, refusing any other class.",
};
/* Build SafeUnpickler: a _pickle.Unpickler with the restricted find_class;
 * *state gets the tz_allow state it looks names up in. */
static PyObject *
make_safe_unpickler(PyObject **state)
{
    PyObject *pickle = NULL, *base = NULL, *err = NULL;
    PyObject *self = NULL, *find_class = NULL, *ns = NULL;
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
    *state = tz_allow_new(err);
    if (*state == NULL)
        goto done;

    self = PyTuple_Pack(2, *state, err);
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
    Py_XDECREF(self);
    Py_XDECREF(find_class);
    Py_XDECREF(ns);
    if (cls == NULL)
        Py_CLEAR(*state);
    return cls;
}

/* {123: (tzinfo, dumps, unpickle), 124: timedelta, 125: datetime, 126: date} */
PyObject *
datetime_ext_default_table(void)
{
    PyObject *datetime = NULL, *pickle = NULL, *functools = NULL, *io = NULL;
    PyObject *dumps = NULL, *bytesio = NULL, *unpickler = NULL, *table = NULL;
    PyObject *state = NULL, *unpickler_kw = NULL, *result = NULL;

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
    unpickler = make_safe_unpickler(&state);
    if (unpickler == NULL)
        goto done;
    unpickler_kw = Py_BuildValue("{ss}", "encoding", "latin1");
    if (unpickler_kw == NULL)
        goto done;
    table = PyDict_New();
    if (table == NULL)
        goto done;

    static const struct { int code; const char *name; } defaults[] = {
        {123, "tzinfo"}, {124, "timedelta"}, {125, "datetime"}, {126, "date"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        PyObject *cls = PyObject_GetAttrString(datetime, defaults[i].name);
        PyObject *self = cls ? PyTuple_Pack(5, unpickler, bytesio, cls, state, unpickler_kw) : NULL;
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
    Py_XDECREF(state);
    Py_XDECREF(unpickler_kw);
    Py_XDECREF(table);
    return result;
}
