/* The Packer Python type (pseud.packer.Packer) and ExtType: construction,
 * the translation table of ext types (code -> (cls, pack, unpack), merged
 * over Packer.default_translation_table), packb/unpackb, and registering it
 * all on the module. The encoding itself is in codec_pack.c and
 * codec_unpack.c; the default datetime ext types in datetime_ext.c. */
#include "packer.h"
#include "datetime_ext.h"
#include "errors.h"

int
packer_parse_ext_code(PyObject *obj, int *code)
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
        if (packer_parse_ext_code(key, &code) < 0) {
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

int
packer_ready(PackerObject *self)
{
    if (self->ext_type == NULL || self->type_cache == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: Packer is not initialised");
        return -1;
    }
    return 0;
}

PackerObject *
packer_checked(PyObject *packer)
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
    return packer_ready(self) < 0 ? NULL : self;
}

/* ------------------------------------------------------------------------ */
/* the Packer type                                                          */

static PyObject *
packer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
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
packer_init(PackerObject *self, PyObject *args, PyObject *kwds)
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
packer_traverse(PackerObject *self, visitproc visit, void *arg)
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
packer_clear(PackerObject *self)
{
    packer_clear_entries(self);
    Py_CLEAR(self->ext_type);
    Py_CLEAR(self->type_cache);
    return 0;
}

static void
packer_dealloc(PackerObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    packer_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
packer_packb(PackerObject *self, PyObject *obj)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    PyObject *res = NULL;
    if (codec_pack((PyObject *)self, obj, &sbuf) == 0)
        res = PyBytes_FromStringAndSize(sbuf.data, (Py_ssize_t)sbuf.size);
    msgpack_sbuffer_destroy(&sbuf);
    return res;
}

/* msgpack.ExtraData, or None when msgpack cannot be imported: looked up on
 * the first trailing data, once (hostile input may repeat it), and kept in
 * the module state. A borrowed reference, or NULL with an exception. */
static PyObject *
extra_data_class(pseud_state *st)
{
    if (st->msgpack_ExtraData != NULL)
        return st->msgpack_ExtraData;
    PyObject *msgpack = PyImport_ImportModule("msgpack");
    PyObject *cls = msgpack ? PyObject_GetAttrString(msgpack, "ExtraData") : NULL;
    Py_XDECREF(msgpack);
    if (cls == NULL || !PyExceptionClass_Check(cls)) {
        if (cls == NULL && !PyErr_ExceptionMatches(PyExc_ImportError)
            && !PyErr_ExceptionMatches(PyExc_AttributeError)) {
            /* a broken msgpack: say so once, then do without it */
            PyObject *why = errors_save();
            pseud_log(st, "warning", "pseud: importing msgpack failed (%R): Packer.unpackb "
                      "raises ValueError for trailing data", why ? why : Py_None);
            Py_XDECREF(why);
        }
        PyErr_Clear();
        Py_XSETREF(cls, Py_NewRef(Py_None));
    }
    st->msgpack_ExtraData = cls;
    return cls;
}

/* Packer.unpackb as upstream's (msgpack's unpackb): exactly one object;
 * trailing bytes raise msgpack.ExtraData(unpacked, extra), a ValueError,
 * when msgpack is there, else ValueError. The RPC's own decoding keeps
 * codec_unpack's ValueError: msgpack plays no part in it. */
static PyObject *
packer_unpackb(PackerObject *self, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    size_t used, len = (size_t)view.len;
    PyObject *res = codec_unpack_first((PyObject *)self, view.buf, len, &used);
    if (res != NULL && used != len) {
        pseud_state *st = pseud_state_of((PyObject *)self);
        PyObject *cls = st ? extra_data_class(st) : NULL;
        if (cls == Py_None) {
            codec_trailing_error(len - used, used);
        }
        else if (cls != NULL) {
            PyObject *exc = PyObject_CallFunction(cls, "Oy#", res,
                                                  (const char *)view.buf + used,
                                                  (Py_ssize_t)(len - used));
#if PY_VERSION_HEX >= 0x030B0000
            /* msgpack's message says no more than "received extra data":
             * a note says how much, and where (shown in tracebacks) */
            PyObject *note = exc ? codec_trailing_message(len - used, used) : NULL;
            PyObject *added = note ? PyObject_CallMethod(exc, "add_note", "O", note) : NULL;
            Py_XDECREF(note);
            if (added == NULL)
                Py_CLEAR(exc);
            Py_XDECREF(added);
#endif
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
        }
        Py_CLEAR(res);
    }
    PyBuffer_Release(&view);
    return res;
}

static PyObject *
packer_register_ext_handler(PackerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "cls", "pack", "unpack", NULL};
    PyObject *code_obj, *cls, *pack, *unpack;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO:register_ext_handler", kwlist,
                                     &code_obj, &cls, &pack, &unpack))
        return NULL;
    if (packer_ready(self) < 0)
        return NULL;
    int code;
    if (packer_parse_ext_code(code_obj, &code) < 0)
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
packer_get_translation_table(PackerObject *self, void *closure)
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
packer_get_max_depth(PackerObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->max_depth);
}

static PyMethodDef packer_methods[] = {
    {"packb", (PyCFunction)packer_packb, METH_O,
     "packb($self, obj, /)\n--\n\nEncode obj as one msgpack object (bytes)."},
    {"unpackb", (PyCFunction)packer_unpackb, METH_O,
     "unpackb($self, data, /)\n--\n\nDecode the single msgpack object filling the "
     "bytes-like data. Raises ValueError on malformed input; for bytes after the "
     "object, msgpack.ExtraData(unpacked, extra) (a ValueError) as upstream's "
     "msgpack did, when msgpack is installed, else ValueError."},
    {"register_ext_handler", (PyCFunction)(void (*)(void))packer_register_ext_handler,
     METH_VARARGS | METH_KEYWORDS,
     "register_ext_handler($self, /, code, cls, pack, unpack)\n--\n\nAdd an ext type: instances "
     "of cls are packed as ext `code` with pack(obj) -> bytes and decoded with "
     "unpack(bytes). ValueError if code is already used."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef packer_getset[] = {
    {"translation_table", (getter)packer_get_translation_table, NULL,
     "{code: (cls, pack, unpack)} (a copy; use register_ext_handler to add).", NULL},
    {"max_depth", (getter)packer_get_max_depth, NULL,
     "Deepest container nesting accepted when packing and unpacking.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(packer_doc,
"Packer(translation_table=None, max_depth=128)\n--\n\n"
"msgpack encoder/decoder. translation_table maps ext codes to\n"
"(cls, pack, unpack) and is merged over the defaults (123 tzinfo,\n"
"124 timedelta, 125 datetime, 126 date, carried as pickles as upstream\n"
"pseud does). Entries are tried in ascending code order with isinstance.\n\n"
"Decoding a default entry's pickle lets out only an allowlist: the\n"
"datetime classes, zoneinfo.ZoneInfo, and, when installed, dateutil's\n"
"tzutc, tzlocal, tzoffset and tzfile and pytz's utc, zones and\n"
"FixedOffset; any other class is refused (ValueError naming it). For a\n"
"tzinfo class of your own, add an entry for datetime.datetime with a code\n"
"below 125 on both peers, e.g. {1: (datetime.datetime, pack, unpack)},\n"
"whose pack writes your tzinfo your way and whose unpack falls back to\n"
"Packer.default_translation_table[125][2] for other datetimes.");

static PyType_Slot packer_slots[] = {
    {Py_tp_new, packer_new},
    {Py_tp_init, packer_init},
    {Py_tp_dealloc, packer_dealloc},
    {Py_tp_traverse, packer_traverse},
    {Py_tp_clear, packer_clear},
    {Py_tp_methods, packer_methods},
    {Py_tp_getset, packer_getset},
    {Py_tp_doc, (void *)packer_doc},
    {0, NULL},
};

static PyType_Spec packer_spec = {
    .name = "pseud._pseud.Packer",
    .basicsize = sizeof(PackerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = packer_slots,
};

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

    st->Packer_Type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &packer_spec, NULL);
    if (st->Packer_Type == NULL)
        return -1;

    PyObject *defaults = datetime_ext_default_table();
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
