/* The allowlist of a datetime pickle from the network (ext types 123-126,
 * docs/protocol.rst): the globals find_class may resolve, each to the real
 * class where any call a checked pickle can make of it is harmless, or to a
 * stand-in that checks its arguments before calling the real reconstructor
 * (or instead of it). The zoneinfo, dateutil and pytz entries exist only
 * when those packages are importable, and are made (the package imported)
 * on the first pickle that names one of them. Also the check of the decoded
 * value: the records (tz_record.c) that dateutil's NEWOBJ and BUILD
 * filled become real objects only once checked (tzlocal and tzoffset
 * here, dateutil 2.x tzfile in tz_dateutil2.c). pickle_check.c has already
 * bounded the pickle's structure when any of this runs. */
#include "tz_allow.h"
#include "tz_dateutil2.h"
#include "tz_record.h"

#include <datetime.h>
#include <string.h>

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


/* ---- checks shared by the stand-ins ----------------------------------- */

int
tz_check_short_str(PyObject *obj, Py_ssize_t max, int none_ok)
{
    if (obj == Py_None)
        return none_ok;
    return PyUnicode_CheckExact(obj) && PyUnicode_GET_LENGTH(obj) <= max;
}

int
tz_check_small_int(PyObject *obj, long limit, long *out)
{
    if (!PyLong_CheckExact(obj))
        return 0;
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (overflow || v <= -limit || v >= limit)
        return 0;
    if (out != NULL)
        *out = v;
    return 1;
}

int
tz_check_list_of(PyObject *obj, int (*item)(PyObject *))
{
    if (!PyList_CheckExact(obj) && !PyTuple_CheckExact(obj))
        return 0;
    PyObject *seq = obj;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!item(PySequence_Fast_GET_ITEM(seq, i)))
            return 0;
    }
    return 1;
}

int
tz_check_time(PyObject *obj)
{
    return tz_check_small_int(obj, 253402300800L, NULL);
}

int
tz_check_offset(PyObject *obj)
{
    return tz_check_small_int(obj, 86400, NULL);
}

static int
item_small(PyObject *obj)
{
    /* indices into the ttinfo list, isdst flags */
    return PyBool_Check(obj) || tz_check_small_int(obj, 65536, NULL);
}

int
tz_check_abbr(PyObject *obj)
{
    return tz_check_short_str(obj, 64, 0);
}

static PyObject *
refused(PyObject *error, const char *what)
{
    PyErr_Format(error, "pseud: refusing to unpickle %s with these arguments", what);
    return NULL;
}

/* ---- dateutil ----------------------------------------------------------- */

/* Stand-in for dateutil.tz.tzoffset(name, offset): name a short str or
 * None, offset an int (seconds) or a timedelta under a day, as tzoffset
 * pickles itself; the real factory (which caches a bounded number of
 * instances) does the rest. self is (tzoffset, error). */
static PyObject *
safe_tzoffset(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *real = PyTuple_GET_ITEM(self, 0);
    if (nargs != 2 || !tz_check_short_str(args[0], 64, 1))
        return refused(PyTuple_GET_ITEM(self, 1), "dateutil.tz.tz.tzoffset");
    if (!tz_check_offset(args[1])) {
        if (!PyDelta_CheckExact(args[1])
            || PyDateTime_DELTA_GET_DAYS(args[1]) < -1
            || PyDateTime_DELTA_GET_DAYS(args[1]) > 0)
            return refused(PyTuple_GET_ITEM(self, 1), "dateutil.tz.tz.tzoffset");
    }
    return PyObject_Vectorcall(real, args, (size_t)nargs, NULL);
}

static PyMethodDef safe_tzoffset_def = {
    "tzoffset", (PyCFunction)(void (*)(void))safe_tzoffset, METH_FASTCALL,
    "dateutil's tzoffset(name, offset) for pickles: checked arguments.",
};

/* What dateutil.tz._tzfile.tzfile resolves to: a token that _unpickle
 * accepts as its class. Calling tzfile itself would open a file named by
 * the network, so the token refuses to be called. self is the error. */
static PyObject *
tzfile_token(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyErr_SetString(self, "pseud: refusing to unpickle a call of "
                          "dateutil.tz._tzfile.tzfile: it reads a file");
    return NULL;
}

static PyMethodDef tzfile_token_def = {
    "tzfile", (PyCFunction)(void (*)(void))tzfile_token, METH_FASTCALL,
    "Stands for dateutil's tzfile class in pickles; never called.",
};

/* Stand-in for dateutil.tz._tzfile._unpickle(cls, key, filename, data),
 * data = (trans_idx, trans_utc, utcoff, isdst, abbr, tz_str): every field
 * of the type tzfile writes (tz_str a POSIX TZ string, bytes or str), so its _load_from_data only ever sees lists of
 * small ints and short strs. self is (token, tzfile, _unpickle, error). */
static PyObject *
safe_tzfile_unpickle(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *error = PyTuple_GET_ITEM(self, 3);
    if (nargs != 4 || args[0] != PyTuple_GET_ITEM(self, 0)
        || !tz_check_short_str(args[1], 256, 1) || !tz_check_short_str(args[2], 1024, 1)
        || !PyTuple_CheckExact(args[3]) || PyTuple_GET_SIZE(args[3]) != 6)
        return refused(error, "dateutil.tz._tzfile._unpickle");
    PyObject **d = &PyTuple_GET_ITEM(args[3], 0);
    if (!tz_check_list_of(d[0], item_small) || !tz_check_list_of(d[1], tz_check_time)
        || !tz_check_list_of(d[2], tz_check_offset) || !tz_check_list_of(d[3], item_small)
        || !tz_check_list_of(d[4], tz_check_abbr)
        || !(tz_check_short_str(d[5], 128, 1)
             || (PyBytes_CheckExact(d[5]) && PyBytes_GET_SIZE(d[5]) <= 128)))
        return refused(error, "dateutil.tz._tzfile._unpickle");
    PyObject *call[4] = {PyTuple_GET_ITEM(self, 1), args[1], args[2], args[3]};
    return PyObject_Vectorcall(PyTuple_GET_ITEM(self, 2), call, 4, NULL);
}

static PyMethodDef safe_tzfile_unpickle_def = {
    "_unpickle", (PyCFunction)(void (*)(void))safe_tzfile_unpickle, METH_FASTCALL,
    "dateutil's tzfile _unpickle for pickles: checked data.",
};

/* ---- pytz --------------------------------------------------------------- */

/* Stand-in for pytz._p(zone, utcoffset, dstoffset, tzname), which pytz's
 * DstTzInfo and StaticTzInfo pickle as. Unlike pytz's own, it never adds a
 * state to the zone's _tzinfos (that would let the network grow a
 * process-wide cache): the state must be one the zone already has. self is
 * (pytz.timezone, error). */
static PyObject *
safe_pytz_p(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *error = PyTuple_GET_ITEM(self, 1);
    long utc_s = 0, dst_s = 0;
    if (nargs < 1 || nargs > 4 || !tz_check_short_str(args[0], 64, 0)
        || (nargs > 1 && args[1] != Py_None && !tz_check_small_int(args[1], 86400, &utc_s))
        || (nargs > 2 && args[2] != Py_None && !tz_check_small_int(args[2], 86400, &dst_s))
        || (nargs > 3 && !tz_check_short_str(args[3], 64, 1)))
        return refused(error, "pytz._p");
    PyObject *tz = PyObject_CallOneArg(PyTuple_GET_ITEM(self, 0), args[0]);
    if (tz == NULL || nargs < 2 || args[1] == Py_None)
        return tz;            /* a StaticTzInfo is its zone */

    PyObject *res = NULL, *key = NULL;
    PyObject *tzinfos = PyObject_GetAttrString(tz, "_tzinfos");
    PyObject *utc = PyDelta_FromDSU(0, (int)utc_s, 0);
    PyObject *dst = nargs > 2 && args[2] != Py_None ? PyDelta_FromDSU(0, (int)dst_s, 0)
                                                     : Py_NewRef(Py_None);
    if (tzinfos == NULL || utc == NULL || dst == NULL)
        goto done;
    if (!PyDict_CheckExact(tzinfos)) {
        refused(error, "pytz._p of a zone without states");
        goto done;
    }
    key = PyTuple_Pack(3, utc, dst, nargs > 3 ? args[3] : Py_None);
    if (key == NULL)
        goto done;
    res = PyDict_GetItemWithError(tzinfos, key);
    if (res != NULL || PyErr_Occurred()) {
        Py_XINCREF(res);
        goto done;
    }
    /* as pytz does: the same offsets under another abbreviation */
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(tzinfos, &pos, &k, &v)) {
        if (PyTuple_CheckExact(k) && PyTuple_GET_SIZE(k) == 3) {
            int a = PyObject_RichCompareBool(PyTuple_GET_ITEM(k, 0), utc, Py_EQ);
            int b = a == 1 ? PyObject_RichCompareBool(PyTuple_GET_ITEM(k, 1), dst, Py_EQ) : a;
            if (a < 0 || b < 0)
                goto done;
            if (a && b) {
                res = Py_NewRef(v);
                goto done;
            }
        }
    }
    PyErr_Format(error, "pseud: refusing to unpickle pytz._p: zone %U has no "
                 "state with utcoffset %lds, dst %lds", args[0], utc_s, dst_s);
done:
    Py_XDECREF(key);
    Py_XDECREF(tzinfos);
    Py_XDECREF(utc);
    Py_XDECREF(dst);
    Py_DECREF(tz);
    return res;
}

static PyMethodDef safe_pytz_p_def = {
    "_p", (PyCFunction)(void (*)(void))safe_pytz_p, METH_FASTCALL,
    "pytz's _p for pickles: checked arguments, existing zone states only.",
};

/* Stand-in for pytz.FixedOffset(minutes): an int under a day (pytz caches
 * one instance per value, so floats would grow it without bound). self is
 * (FixedOffset, error). */
static PyObject *
safe_pytz_fixed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !tz_check_small_int(args[0], 1440, NULL))
        return refused(PyTuple_GET_ITEM(self, 1), "pytz.FixedOffset");
    return PyObject_CallOneArg(PyTuple_GET_ITEM(self, 0), args[0]);
}

static PyMethodDef safe_pytz_fixed_def = {
    "FixedOffset", (PyCFunction)(void (*)(void))safe_pytz_fixed, METH_FASTCALL,
    "pytz.FixedOffset for pickles: int minutes only.",
};

int
tz_allow_put(PyObject *allowed, const char *module, const char *name, PyObject *obj)
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
    int rc = tz_allow_put(allowed, module, name, obj);
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
    if (tz_allow_put(allowed, "zoneinfo", "ZoneInfo", unpickle) < 0
        || tz_allow_put(allowed, "zoneinfo", "ZoneInfo._unpickle", unpickle) < 0
        || tz_allow_put(allowed, "builtins", "getattr", getter) < 0
        || tz_allow_put(allowed, "__builtin__", "getattr", getter) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(getter);
    Py_XDECREF(self);
    Py_XDECREF(unpickle);
    Py_DECREF(zi);
    return rc;
}


/* ---- the allowlist ------------------------------------------------------ */

const pickle_class_name tz_allow_classes[] = {
    /* copyreg's default reduction of a plain class, NEWOBJ + BUILD(its
     * __dict__): dateutil's tzlocal (every version), tzoffset and tzutc
     * (2.x; tzutc has no state). Every class BUILD may fill resolves to
     * records (tz_record.c): _pickle's BUILD of an object without
     * __setstate__ would intern the state's keys and set them as
     * attributes before anything is checked. */
    {"dateutil.tz.tz", "tzlocal", PICKLE_NEWOBJ | PICKLE_BUILD},
    {"dateutil.tz.tz", "tzoffset", PICKLE_NEWOBJ | PICKLE_BUILD},
    {"dateutil.tz.tz", "tzutc", PICKLE_NEWOBJ},
    /* dateutil 2.7-2.9's tzfile: REDUCE tzfile(None, filename) + BUILD(its
     * __dict__), which holds one NEWOBJ + BUILD(state) _ttinfo per local
     * time type (tz_dateutil2.c) */
    {"dateutil.tz.tz", "tzfile", PICKLE_REDUCE_NEW | PICKLE_BUILD},
    {"dateutil.tz.tz", "_ttinfo", PICKLE_NEWOBJ | PICKLE_BUILD | PICKLE_MANY},
};
const size_t tz_allow_n_classes = sizeof tz_allow_classes / sizeof tz_allow_classes[0];

/* import `name`, or set *mod to NULL if it is not installed */
static int
import_optional(const char *name, PyObject **mod)
{
    *mod = PyImport_ImportModule(name);
    if (*mod != NULL)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_ImportError))
        return -1;
    PyErr_Clear();
    return 0;
}

/* allow module.name as a stand-in built from `def` with self = (attrs of
 * `mod`..., error); attrs is a NULL-terminated list */
static int
allow_standin(PyObject *allowed, const char *module, const char *name,
              PyMethodDef *def, PyObject *mod, const char *const *attrs,
              PyObject *error)
{
    Py_ssize_t n = 0;
    while (attrs[n] != NULL)
        n++;
    PyObject *self = PyTuple_New(n + 1);
    if (self == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyObject_GetAttrString(mod, attrs[i]);
        if (v == NULL) {
            Py_DECREF(self);
            return -1;
        }
        PyTuple_SET_ITEM(self, i, v);
    }
    PyTuple_SET_ITEM(self, n, Py_NewRef(error));
    PyObject *fn = PyCFunction_New(def, self);
    Py_DECREF(self);
    if (fn == NULL)
        return -1;
    int rc = tz_allow_put(allowed, module, name, fn);
    Py_DECREF(fn);
    return rc;
}

/* The entry of a dateutil class that pickles either as REDUCE (dateutil
 * 3+: tzutc(), tzoffset(name, offset)) or as copyreg's NEWOBJ (2.x, and
 * tzlocal in every version): a type, as NEWOBJ requires one, whose tp_new
 * stands in for the real class. Its _pseud_standin attribute is (name,
 * nullary, check or None, error). With no arguments (NEWOBJ, or a REDUCE
 * of tzutc()) it returns nullary(): the tzutc singleton, or a record
 * (tz_record.c) for the one BUILD that pickle_check allows, which
 * tz_allow_finish checks and converts. With arguments, the checked
 * constructor (tzoffset's) or a refusal. The result is never an instance
 * of the stand-in, so no __init__ runs. */
static PyObject *
standin_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *info = PyObject_GetAttrString((PyObject *)type, "_pseud_standin");
    if (info == NULL)
        return NULL;
    PyObject *res = NULL;
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 4) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: malformed tzinfo stand-in");
        goto done;
    }
    PyObject *name = PyTuple_GET_ITEM(info, 0), *nullary = PyTuple_GET_ITEM(info, 1);
    PyObject *check = PyTuple_GET_ITEM(info, 2), *error = PyTuple_GET_ITEM(info, 3);
    if ((kwds != NULL && PyDict_GET_SIZE(kwds) != 0)
        || (PyTuple_GET_SIZE(args) != 0 && check == Py_None)) {
        PyErr_Format(error, "pseud: refusing to unpickle %S with arguments", name);
        goto done;
    }
    res = PyTuple_GET_SIZE(args) != 0 ? PyObject_Call(check, args, NULL)
                                      : PyObject_CallNoArgs(nullary);
done:
    Py_DECREF(info);
    return res;
}

static PyType_Slot standin_slots[] = {
    {Py_tp_new, standin_new},
    {0, NULL},
};

static PyType_Spec standin_spec = {
    .name = "pseud._pseud.tzinfo_standin",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = standin_slots,
};

int
tz_allow_class(PyObject *allowed, const char *name, PyObject *nullary, PyObject *check,
               PyObject *error)
{
    PyObject *full = PyUnicode_FromFormat("dateutil.tz.tz.%s", name);
    PyObject *info = full ? PyTuple_Pack(4, full, nullary, check, error) : NULL;
    PyObject *type = info ? PyType_FromSpec(&standin_spec) : NULL;
    int rc = -1;
    if (type != NULL && PyObject_SetAttrString(type, "_pseud_standin", info) == 0)
        rc = tz_allow_put(allowed, "dateutil.tz.tz", name, type);
    Py_XDECREF(full);
    Py_XDECREF(info);
    Py_XDECREF(type);
    return rc;
}

/* the entry of dateutil.tz.tz.<name>, whose NEWOBJ makes a record of
 * `records` standing for mod.<name> */
static int
allow_recorded_class(PyObject *allowed, PyObject *mod, const char *name,
                     PyObject *records, PyObject *check, PyObject *error)
{
    PyObject *real = PyObject_GetAttrString(mod, name);
    PyObject *maker = real ? tz_record_maker(records, TZ_RECORD_INSTANCE, real) : NULL;
    int rc = maker ? tz_allow_class(allowed, name, maker, check, error) : -1;
    Py_XDECREF(real);
    Py_XDECREF(maker);
    return rc;
}

/* The dateutil entries, if dateutil is importable; *converter gets what
 * tz2_convert needs (None without dateutil). */
static int
allow_dateutil(PyObject *allowed, PyObject *error, PyObject **converter)
{
    PyObject *tz, *tzfile_mod;
    *converter = NULL;
    if (import_optional("dateutil.tz.tz", &tz) < 0)
        return -1;
    if (tz == NULL) {
        *converter = Py_NewRef(Py_None);
        return 0;
    }
    int rc = -1;
    PyObject *token = NULL, *self = NULL, *fn = NULL, *check = NULL;
    /* the records of the zones: tzlocal, tzoffset, 2.x tzfile */
    PyObject *records = tz_record_type_new(1);
    PyObject *tzutc = records ? PyObject_GetAttrString(tz, "tzutc") : NULL;
    PyObject *tzoffset = tzutc ? PyObject_GetAttrString(tz, "tzoffset") : NULL;
    PyObject *check_self = tzoffset ? PyTuple_Pack(2, tzoffset, error) : NULL;
    if (check_self != NULL)
        check = PyCFunction_New(&safe_tzoffset_def, check_self);
    Py_XDECREF(tzoffset);
    Py_XDECREF(check_self);
    if (check == NULL
        || tz_allow_class(allowed, "tzutc", tzutc, Py_None, error) < 0
        || allow_recorded_class(allowed, tz, "tzlocal", records, Py_None, error) < 0
        || allow_recorded_class(allowed, tz, "tzoffset", records, check, error) < 0)
        goto done;
    /* dateutil >= 3 pickles a tzfile by value through _tzfile._unpickle;
     * 2.x (no such module) by its __dict__, which tz_dateutil2.c decodes */
    if (import_optional("dateutil.tz._tzfile", &tzfile_mod) < 0)
        goto done;
    if (tzfile_mod == NULL
        || !PyObject_HasAttrString(tzfile_mod, "_unpickle")) {
        Py_XDECREF(tzfile_mod);
        rc = tz2_allow(allowed, tz, Py_None, Py_None, records, error, converter);
        goto done;
    }
    token = PyCFunction_New(&tzfile_token_def, error);
    PyObject *cls = PyObject_GetAttrString(tzfile_mod, "tzfile");
    PyObject *unpickle = PyObject_GetAttrString(tzfile_mod, "_unpickle");
    if (token != NULL && cls != NULL && unpickle != NULL)
        self = PyTuple_Pack(4, token, cls, unpickle, error);
    Py_XDECREF(cls);
    Py_XDECREF(unpickle);
    Py_DECREF(tzfile_mod);
    fn = self ? PyCFunction_New(&safe_tzfile_unpickle_def, self) : NULL;
    if (fn == NULL
        || tz_allow_put(allowed, "dateutil.tz._tzfile", "tzfile", token) < 0
        || tz_allow_put(allowed, "dateutil.tz._tzfile", "_unpickle", fn) < 0)
        goto done;
    rc = tz2_allow(allowed, tz, fn, token, records, error, converter);
done:
    Py_XDECREF(fn);
    Py_XDECREF(self);
    Py_XDECREF(token);
    Py_XDECREF(check);
    Py_XDECREF(tzutc);
    Py_XDECREF(records);
    Py_DECREF(tz);
    return rc;
}

static int
allow_pytz(PyObject *allowed, PyObject *error)
{
    PyObject *pytz;
    if (import_optional("pytz", &pytz) < 0)
        return -1;
    if (pytz == NULL)
        return 0;
    static const char *const p_attrs[] = {"timezone", NULL};
    static const char *const fixed_attrs[] = {"FixedOffset", NULL};
    int rc = 0;
    /* _UTC() takes no arguments and returns the pytz.utc singleton */
    if (allow_attr(allowed, pytz, "pytz", "_UTC") < 0
        || allow_standin(allowed, "pytz", "_p", &safe_pytz_p_def, pytz, p_attrs,
                         error) < 0
        || allow_standin(allowed, "pytz", "FixedOffset", &safe_pytz_fixed_def,
                         pytz, fixed_attrs, error) < 0)
        rc = -1;
    Py_DECREF(pytz);
    return rc;
}

static PyObject *result_refs(void);

/* The state is a dict: "allowed" {(module, name): entry}, "error" (the
 * stand-ins' exception class), and for each group of optional packages
 * ("zoneinfo", "dateutil", "pytz") a key once its entries are in; the
 * dateutil group also sets "refs" (result_refs) and "converter"
 * (tz_dateutil2.c), which tz_allow_finish reads. */
enum { G_ZONEINFO, G_DATEUTIL, G_PYTZ, N_GROUPS };
static const char *const group_names[N_GROUPS] = {"zoneinfo", "dateutil", "pytz"};

PyObject *
tz_allow_new(PyObject *error)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    PyObject *allowed = PyDict_New();
    PyObject *state = allowed ? Py_BuildValue("{sOsO}", "allowed", allowed, "error", error)
                              : NULL;
    PyObject *datetime_mod = state ? PyImport_ImportModule("datetime") : NULL;
    if (datetime_mod == NULL)
        goto fail;
    /* the datetime constructors check their arguments in C */
    static const char *names[] = {"datetime", "date", "time", "timedelta",
                                  "timezone", "tzinfo"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (allow_attr(allowed, datetime_mod, "datetime", names[i]) < 0)
            goto fail;
    }
    PyObject *encode = PyCFunction_New(&safe_encode_def, error);
    int rc = encode == NULL ? -1 : tz_allow_put(allowed, "_codecs", "encode", encode);
    Py_XDECREF(encode);
    if (rc < 0)
        goto fail;
    Py_DECREF(datetime_mod);
    Py_DECREF(allowed);
    return state;
fail:
    Py_XDECREF(datetime_mod);
    Py_XDECREF(allowed);
    Py_XDECREF(state);
    return NULL;
}

/* The group whose entries (module, name) would be, or -1: zoneinfo's
 * pickles name builtins.getattr (ZoneInfo._unpickle) before ZoneInfo. */
static int
group_of(PyObject *module, PyObject *name)
{
    if (!PyUnicode_Check(module) || !PyUnicode_Check(name))
        return -1;
    if (PyUnicode_CompareWithASCIIString(module, "zoneinfo") == 0
        || ((PyUnicode_CompareWithASCIIString(module, "builtins") == 0
             || PyUnicode_CompareWithASCIIString(module, "__builtin__") == 0)
            && PyUnicode_CompareWithASCIIString(name, "getattr") == 0))
        return G_ZONEINFO;
    if (PyUnicode_CompareWithASCIIString(module, "pytz") == 0)
        return G_PYTZ;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(module, &n);
    if (s == NULL) {
        PyErr_Clear();      /* surrogates: no module of ours */
        return -1;
    }
    if (n > 9 && strncmp(s, "dateutil.", 9) == 0)
        return G_DATEUTIL;
    return -1;
}

/* Import a group's package and add its entries, once: a package that is
 * not installed counts as loaded too, with no entries (hostile pickles
 * naming it must not cost an import attempt each). The entries are made
 * apart and put in at once, only if no other thread did meanwhile: the
 * converter must be the one of the entries in "allowed". */
static int
load_group(PyObject *state, int group)
{
    PyObject *error = PyDict_GetItemString(state, "error");
    PyObject *mine = PyDict_New(), *converter = NULL, *refs = NULL;
    if (mine == NULL)
        return -1;
    int rc;
    if (group == G_ZONEINFO)
        rc = allow_zoneinfo(mine, error);
    else if (group == G_PYTZ)
        rc = allow_pytz(mine, error);
    else {
        rc = allow_dateutil(mine, error, &converter);
        if (rc == 0 && (refs = result_refs()) == NULL)
            rc = -1;
    }
    /* from here on no Python code runs: nothing can interleave */
    if (rc == 0 && PyDict_GetItemString(state, group_names[group]) == NULL) {
        if (PyDict_Update(PyDict_GetItemString(state, "allowed"), mine) < 0
            || (converter != NULL && PyDict_SetItemString(state, "converter", converter) < 0)
            || (refs != NULL && PyDict_SetItemString(state, "refs", refs) < 0)
            || PyDict_SetItemString(state, group_names[group], Py_True) < 0)
            rc = -1;
    }
    Py_DECREF(mine);
    Py_XDECREF(converter);
    Py_XDECREF(refs);
    return rc;
}

int
tz_allow_lookup(PyObject *state, PyObject *module, PyObject *name, PyObject **entry)
{
    *entry = NULL;
    PyObject *key = PyTuple_Pack(2, module, name);
    if (key == NULL)
        return -1;
    PyObject *allowed = PyDict_GetItemString(state, "allowed");
    PyObject *found = PyDict_GetItemWithError(allowed, key);
    if (found == NULL && !PyErr_Occurred()) {
        int group = group_of(module, name);
        if (group >= 0 && PyDict_GetItemString(state, group_names[group]) == NULL) {
            if (load_group(state, group) < 0) {
                Py_DECREF(key);
                return -1;
            }
            found = PyDict_GetItemWithError(allowed, key);
        }
    }
    Py_DECREF(key);
    if (found != NULL) {
        *entry = Py_NewRef(found);
        return 1;
    }
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError))
            return -1;
        PyErr_Clear();      /* unhashable names: not in it */
    }
    return 0;
}

/* ---- what tz_allow_finish checks or converts -------------------------- */

/* {cls: its __dict__} of a tzlocal() and a tzoffset('UTC', 0) made here
 * (None when dateutil is not importable) */
static PyObject *
result_refs(void)
{
    PyObject *tz;
    if (import_optional("dateutil.tz.tz", &tz) < 0)
        return NULL;
    if (tz == NULL)
        Py_RETURN_NONE;
    PyObject *refs = PyDict_New();
    PyObject *local = refs ? PyObject_CallMethod(tz, "tzlocal", NULL) : NULL;
    PyObject *offset = local ? PyObject_CallMethod(tz, "tzoffset", "si", "UTC", 0) : NULL;
    PyObject *res = NULL;
    Py_DECREF(tz);
    if (offset != NULL) {
        PyObject *made[2] = {local, offset};
        int i;
        for (i = 0; i < 2; i++) {
            PyObject *state = PyObject_GetAttrString(made[i], "__dict__");
            PyObject *copy = state ? PyDict_Copy(state) : NULL;
            int rc = copy ? PyDict_SetItem(refs, (PyObject *)Py_TYPE(made[i]), copy) : -1;
            Py_XDECREF(state);
            Py_XDECREF(copy);
            if (rc < 0)
                break;
        }
        if (i == 2)
            res = Py_NewRef(refs);
    }
    Py_XDECREF(refs);
    Py_XDECREF(local);
    Py_XDECREF(offset);
    return res;
}

/* a value of a rebuilt object's state: of the type of the reference's (or
 * None for a str: tzoffset's name may be None), and small */
static int
state_value_ok(PyObject *ref, PyObject *v)
{
    if (v == Py_None && PyUnicode_CheckExact(ref))
        return 1;
    if (Py_TYPE(v) != Py_TYPE(ref))
        return 0;
    if (PyDelta_CheckExact(v))
        return PyDateTime_DELTA_GET_DAYS(v) >= -1 && PyDateTime_DELTA_GET_DAYS(v) <= 0;
    if (PyBool_Check(v) || v == Py_None)
        return 1;
    if (PyLong_CheckExact(v))
        return tz_check_small_int(v, 86400, NULL);
    if (PyUnicode_CheckExact(v))
        return tz_check_abbr(v);
    if (PyTuple_CheckExact(v))
        return PyTuple_GET_SIZE(v) <= 4 && tz_check_list_of(v, tz_check_abbr);
    return 0;   /* a kind of attribute this code does not know: refuse */
}

/* A tzlocal or tzoffset from a record: its state must hold exactly the
 * attributes of the one made here (`refs`, None without dateutil), of the
 * same types. Only then is the real object made, as NEWOBJ would
 * (cls.__new__(cls): no __init__), and given the checked values under the
 * reference's own names: already interned, where the state's, chosen by
 * the peer, would be interned by setattr. A new reference, or NULL with
 * ValueError. */
static PyObject *
instance_convert(PyObject *refs, tz_record *rec)
{
    PyObject *ref = refs != Py_None ? PyDict_GetItemWithError(refs, rec->arg) : NULL;
    if (ref == NULL && PyErr_Occurred())
        return NULL;
    PyObject *state = rec->state;
    /* as many keys, each of ref's in state: the same keys */
    int ok = ref != NULL && state != NULL && PyDict_GET_SIZE(state) == PyDict_GET_SIZE(ref);
    Py_ssize_t pos = 0;
    PyObject *k, *r;
    while (ok && PyDict_Next(ref, &pos, &k, &r)) {
        PyObject *v = PyDict_GetItemWithError(state, k);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        ok = v != NULL && state_value_ok(r, v);
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "pseud: refusing a pickled dateutil tzlocal or tzoffset "
                        "whose state differs from the attributes of one made here");
        return NULL;
    }
    PyObject *obj = PyObject_CallMethod(rec->arg, "__new__", "O", rec->arg);
    pos = 0;
    while (obj != NULL && PyDict_Next(ref, &pos, &k, &r)) {
        PyObject *v = PyDict_GetItemWithError(state, k);    /* there: checked */
        if (v == NULL || PyObject_SetAttr(obj, k, v) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "pseud: a checked state changed");
            Py_CLEAR(obj);
        }
    }
    return obj;
}

PyObject *
tz_allow_finish(PyObject *state, PyObject *obj)
{
    int has_tz = PyDateTime_Check(obj) || PyTime_Check(obj);
    PyObject *tz = has_tz ? PyObject_GetAttrString(obj, "tzinfo") : Py_NewRef(obj);
    if (tz == NULL)
        return NULL;
    PyObject *res = NULL, *local = NULL;
    tz_record *rec = tz_record_of(tz);
    if (rec == NULL) {
        /* made by the allowlist's classes and checked stand-ins */
        res = Py_NewRef(obj);
        goto done;
    }
    PyObject *converter = PyDict_GetItemString(state, "converter");
    PyObject *refs = PyDict_GetItemString(state, "refs");
    if (rec->kind == TZ_RECORD_TZFILE)
        local = tz2_convert(converter ? converter : Py_None, rec);
    else if (rec->kind == TZ_RECORD_INSTANCE)
        local = instance_convert(refs ? refs : Py_None, rec);
    else
        PyErr_SetString(PyExc_ValueError, "pseud: refusing a pickled dateutil 2.x "
                        "_ttinfo in place of a zone");
    if (local == NULL)
        goto done;
    if (!has_tz) {
        res = Py_NewRef(local);
    }
    else {
        /* the same wall time and fold, in the converted zone */
        PyObject *replace = PyObject_GetAttrString(obj, "replace");
        PyObject *noargs = replace ? PyTuple_New(0) : NULL;
        PyObject *kw = noargs ? Py_BuildValue("{sO}", "tzinfo", local) : NULL;
        if (kw != NULL)
            res = PyObject_Call(replace, noargs, kw);
        Py_XDECREF(replace);
        Py_XDECREF(noargs);
        Py_XDECREF(kw);
    }
done:
    Py_XDECREF(local);
    Py_DECREF(tz);
    return res;
}
