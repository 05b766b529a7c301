/* The allowlist of a datetime pickle from the network (ext types 123-126,
 * docs/protocol.rst): the globals find_class may resolve, each to the real
 * class where any call a checked pickle can make of it is harmless, or to a
 * stand-in that checks its arguments before calling the real reconstructor
 * (or instead of it). The zoneinfo, dateutil and pytz entries exist only
 * when those packages are importable. Also the check of the one BUILD a
 * pickle may do (dateutil's tzlocal). pickle_check.c has already bounded
 * the pickle's structure when any of this runs. */
#include "tz_allow.h"

#include <datetime.h>

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

/* obj is an exact str of at most max characters (or None, if none_ok) */
static int
is_short_str(PyObject *obj, Py_ssize_t max, int none_ok)
{
    if (obj == Py_None)
        return none_ok;
    return PyUnicode_CheckExact(obj) && PyUnicode_GET_LENGTH(obj) <= max;
}

/* obj is an exact int with |obj| < limit; sets *out */
static int
is_small_int(PyObject *obj, long limit, long *out)
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

/* an exact list (or tuple) whose items all pass `item`; bounded by the
 * pickle's length, which pickle_check limited */
static int
is_list_of(PyObject *obj, int (*item)(PyObject *))
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

/* seconds since the epoch of a transition: within datetime's years 1..9999 */
static int
item_time(PyObject *obj)
{
    return is_small_int(obj, 253402300800L, NULL);
}

static int
item_offset(PyObject *obj)
{
    return is_small_int(obj, 86400, NULL);
}

static int
item_small(PyObject *obj)
{
    /* indices into the ttinfo list, isdst flags */
    return PyBool_Check(obj) || is_small_int(obj, 65536, NULL);
}

static int
item_abbr(PyObject *obj)
{
    return is_short_str(obj, 64, 0);
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
    if (nargs != 2 || !is_short_str(args[0], 64, 1))
        return refused(PyTuple_GET_ITEM(self, 1), "dateutil.tz.tz.tzoffset");
    if (!item_offset(args[1])) {
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
        || !is_short_str(args[1], 256, 1) || !is_short_str(args[2], 1024, 1)
        || !PyTuple_CheckExact(args[3]) || PyTuple_GET_SIZE(args[3]) != 6)
        return refused(error, "dateutil.tz._tzfile._unpickle");
    PyObject **d = &PyTuple_GET_ITEM(args[3], 0);
    if (!is_list_of(d[0], item_small) || !is_list_of(d[1], item_time)
        || !is_list_of(d[2], item_offset) || !is_list_of(d[3], item_small)
        || !is_list_of(d[4], item_abbr)
        || !(is_short_str(d[5], 128, 1)
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
    if (nargs < 1 || nargs > 4 || !is_short_str(args[0], 64, 0)
        || (nargs > 1 && args[1] != Py_None && !is_small_int(args[1], 86400, &utc_s))
        || (nargs > 2 && args[2] != Py_None && !is_small_int(args[2], 86400, &dst_s))
        || (nargs > 3 && !is_short_str(args[3], 64, 1)))
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
    if (nargs != 1 || !is_small_int(args[0], 1440, NULL))
        return refused(PyTuple_GET_ITEM(self, 1), "pytz.FixedOffset");
    return PyObject_CallOneArg(PyTuple_GET_ITEM(self, 0), args[0]);
}

static PyMethodDef safe_pytz_fixed_def = {
    "FixedOffset", (PyCFunction)(void (*)(void))safe_pytz_fixed, METH_FASTCALL,
    "pytz.FixedOffset for pickles: int minutes only.",
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


/* ---- the allowlist ------------------------------------------------------ */

const pickle_class_name tz_allow_newobj[] = {
    /* copyreg's default reduction of a plain class, NEWOBJ + BUILD(its
     * __dict__): dateutil's tzlocal (every version), tzoffset and tzutc
     * (2.x; tzutc has no state) */
    {"dateutil.tz.tz", "tzlocal", 1},
    {"dateutil.tz.tz", "tzoffset", 1},
    {"dateutil.tz.tz", "tzutc", 0},
};
const size_t tz_allow_n_newobj = sizeof tz_allow_newobj / sizeof tz_allow_newobj[0];

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
    int rc = allow(allowed, module, name, fn);
    Py_DECREF(fn);
    return rc;
}

/* The entry of a dateutil class that pickles either as REDUCE (dateutil
 * 3+: tzutc(), tzoffset(name, offset)) or as copyreg's NEWOBJ (2.x, and
 * tzlocal in every version): a type, as NEWOBJ requires one, whose tp_new
 * stands in for the real class. Its _pseud_standin attribute is (real
 * class, checked constructor or None, error, singleton). With no arguments
 * (NEWOBJ, or a REDUCE of tzutc()), it returns the tzutc singleton, or an
 * empty instance of the real class as NEWOBJ would, for the one BUILD that
 * pickle_check allows; tz_allow_check_result then requires that instance to
 * hold exactly the attributes a real one has. With arguments, the checked
 * constructor (tzoffset's) or a refusal. The result is never an instance of
 * the stand-in, so no __init__ runs. */
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
    PyObject *real = PyTuple_GET_ITEM(info, 0), *check = PyTuple_GET_ITEM(info, 1);
    PyObject *error = PyTuple_GET_ITEM(info, 2);
    if ((kwds != NULL && PyDict_GET_SIZE(kwds) != 0)
        || (PyTuple_GET_SIZE(args) != 0 && check == Py_None)) {
        PyErr_Format(error, "pseud: refusing to unpickle %S with these arguments", real);
        goto done;
    }
    if (PyTuple_GET_SIZE(args) != 0)
        res = PyObject_Call(check, args, NULL);
    else if (PyTuple_GET_ITEM(info, 3) == Py_True)
        res = PyObject_CallNoArgs(real);
    else
        res = PyObject_CallMethod(real, "__new__", "O", real);
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

/* allow dateutil.tz.tz.<name> as a stand-in type for mod.<name> */
static int
allow_dateutil_class(PyObject *allowed, PyObject *mod, const char *name,
                     PyObject *check, int singleton, PyObject *error)
{
    PyObject *real = PyObject_GetAttrString(mod, name);
    if (real == NULL)
        return -1;
    PyObject *info = Py_BuildValue("(OOOO)", real, check, error,
                                   singleton ? Py_True : Py_False);
    PyObject *type = info ? PyType_FromSpec(&standin_spec) : NULL;
    int rc = -1;
    if (type != NULL && PyObject_SetAttrString(type, "_pseud_standin", info) == 0)
        rc = allow(allowed, "dateutil.tz.tz", name, type);
    Py_DECREF(real);
    Py_XDECREF(info);
    Py_XDECREF(type);
    return rc;
}


static int
allow_dateutil(PyObject *allowed, PyObject *error)
{
    PyObject *tz, *tzfile_mod;
    if (import_optional("dateutil.tz.tz", &tz) < 0)
        return -1;
    if (tz == NULL)
        return 0;
    int rc = -1;
    PyObject *token = NULL, *self = NULL, *fn = NULL;
    PyObject *tzoffset = PyObject_GetAttrString(tz, "tzoffset");
    PyObject *check_self = tzoffset ? PyTuple_Pack(2, tzoffset, error) : NULL;
    PyObject *check = check_self ? PyCFunction_New(&safe_tzoffset_def, check_self) : NULL;
    Py_XDECREF(tzoffset);
    Py_XDECREF(check_self);
    if (check == NULL
        || allow_dateutil_class(allowed, tz, "tzutc", Py_None, 1, error) < 0
        || allow_dateutil_class(allowed, tz, "tzlocal", Py_None, 0, error) < 0
        || allow_dateutil_class(allowed, tz, "tzoffset", check, 0, error) < 0) {
        Py_XDECREF(check);
        goto done;
    }
    Py_DECREF(check);
    /* dateutil >= 3 pickles a tzfile by value through _tzfile._unpickle */
    if (import_optional("dateutil.tz._tzfile", &tzfile_mod) < 0)
        goto done;
    if (tzfile_mod == NULL
        || !PyObject_HasAttrString(tzfile_mod, "_unpickle")) {
        Py_XDECREF(tzfile_mod);
        rc = 0;
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
        || allow(allowed, "dateutil.tz._tzfile", "tzfile", token) < 0
        || allow(allowed, "dateutil.tz._tzfile", "_unpickle", fn) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(fn);
    Py_XDECREF(self);
    Py_XDECREF(token);
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

int
tz_allow_fill(PyObject *allowed, PyObject *error)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return -1;
    PyObject *datetime_mod = PyImport_ImportModule("datetime");
    if (datetime_mod == NULL)
        return -1;
    /* the datetime constructors check their arguments in C */
    static const char *names[] = {"datetime", "date", "time", "timedelta",
                                  "timezone", "tzinfo"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (allow_attr(allowed, datetime_mod, "datetime", names[i]) < 0) {
            Py_DECREF(datetime_mod);
            return -1;
        }
    }
    Py_DECREF(datetime_mod);
    PyObject *encode = PyCFunction_New(&safe_encode_def, error);
    int rc = encode == NULL ? -1 : allow(allowed, "_codecs", "encode", encode);
    Py_XDECREF(encode);
    if (rc < 0 || allow_zoneinfo(allowed, error) < 0
        || allow_dateutil(allowed, error) < 0 || allow_pytz(allowed, error) < 0)
        return -1;
    return 0;
}

/* ---- the BUILD state of tzlocal --------------------------------------- */

/* {cls: its __dict__} of a tzlocal() and a tzoffset('UTC', 0) made here */
PyObject *
tz_allow_result_context(void)
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
        return is_small_int(v, 86400, NULL);
    if (PyUnicode_CheckExact(v))
        return item_abbr(v);
    if (PyTuple_CheckExact(v))
        return PyTuple_GET_SIZE(v) <= 4 && is_list_of(v, item_abbr);
    return 0;   /* a kind of attribute this code does not know: refuse */
}

int
tz_allow_check_result(PyObject *context, PyObject *obj)
{
    if (context == Py_None)
        return 0;
    PyObject *tz;
    if (PyDateTime_Check(obj) || PyTime_Check(obj)) {
        tz = PyObject_GetAttrString(obj, "tzinfo");
        if (tz == NULL)
            return -1;
    }
    else {
        tz = Py_NewRef(obj);
    }
    int ok = 1;
    PyObject *ref = PyDict_GetItemWithError(context, (PyObject *)Py_TYPE(tz));
    if (ref == NULL && PyErr_Occurred()) {
        Py_DECREF(tz);
        return -1;
    }
    if (ref != NULL) {
        PyObject *state = PyObject_GetAttrString(tz, "__dict__");
        if (state == NULL) {
            Py_DECREF(tz);
            return -1;
        }
        ok = PyDict_CheckExact(state) && PyDict_GET_SIZE(state) == PyDict_GET_SIZE(ref);
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (ok && PyDict_Next(state, &pos, &k, &v)) {
            PyObject *r = PyUnicode_CheckExact(k) ? PyDict_GetItemWithError(ref, k) : NULL;
            if (r == NULL && PyErr_Occurred()) {
                Py_DECREF(state);
                Py_DECREF(tz);
                return -1;
            }
            ok = r != NULL && state_value_ok(r, v);
        }
        Py_DECREF(state);
    }
    Py_DECREF(tz);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "pseud: refusing a pickled dateutil tzlocal or tzoffset "
                        "whose state differs from the attributes of one made here");
        return -1;
    }
    return 0;
}
