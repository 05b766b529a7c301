/* dateutil 2.x tzfile zones in datetime pickles from the network. dateutil
 * 2.7 to 2.9 (what most programs, and upstream pseud's peers, run) pickle
 * a tzfile by value:
 *
 *   REDUCE dateutil.tz.tz.tzfile(None, filename), BUILD its __dict__:
 *     _filename, _trans_list, _trans_list_utc (ints), _trans_idx (one
 *     _ttinfo per transition), _ttinfo_list, _ttinfo_std, _ttinfo_dst,
 *     _ttinfo_before, _ttinfo_first (_ttinfo or None);
 *   each _ttinfo: NEWOBJ dateutil.tz.tz._ttinfo(), BUILD {offset, delta,
 *     isdst, abbr, isstd, isgmt, dstoffset}, shared through the memo.
 *
 * Neither real class is called while _pickle runs: the allowlist resolves
 * them to records (tz_record.c), which only keep what they are given
 * (pickle_check.c has bounded the pickle and allows each record one BUILD).
 * tz2_convert then checks every field, type and bound, and builds the
 * local dateutil's zone from the checked values: through dateutil >= 3's
 * checked _tzfile._unpickle (tz_allow.c), or, with a local dateutil 2.x,
 * as its own unpickling would, with tzfile(None, filename), which reads no
 * file, and real _ttinfo objects. A record never leaves the decoder. */
#include "tz_dateutil2.h"
#include "tz_allow.h"
#include "tz_record.h"

#include <datetime.h>
#include <stddef.h>

/* What dateutil.tz.tz.tzfile resolves to: REDUCE calls it with the
 * (None, filename) of tzfile.__reduce_ex__. Any other call, above all one
 * with a file name or a file as first argument, is refused: the real
 * class would read that file. self is the zones' record type. */
static PyObject *
tzfile_standin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || args[0] != Py_None || !tz_check_short_str(args[1], 1024, 0)) {
        PyErr_SetString(PyExc_ValueError, "pseud: refusing to unpickle a call of "
                        "dateutil.tz.tz.tzfile other than tzfile(None, filename): "
                        "given a file or a file name, it reads it");
        return NULL;
    }
    return tz_record_new(self, TZ_RECORD_TZFILE, args[1]);
}

static PyMethodDef tzfile_standin_def = {
    "tzfile", (PyCFunction)(void (*)(void))tzfile_standin, METH_FASTCALL,
    "dateutil 2.x's tzfile(None, filename) for pickles: a record, no file read.",
};


/* ---- the converter ------------------------------------------------------ */

/* a record of another allowlist than the converter's (two threads
 * building one each) counts too */
static int
is_ttinfo_record(PyObject *obj)
{
    tz_record *rec = tz_record_of(obj);
    return rec != NULL && rec->kind == TZ_RECORD_TTINFO;
}

/* the converter tuple */
enum {
    CV_UNPICKLE,        /* dateutil >= 3: checked _tzfile._unpickle, or None */
    CV_TOKEN,           /* and the class token it takes, or None */
    CV_TZFILE,          /* dateutil 2.x: its tzfile and _ttinfo, or None */
    CV_TTINFO,
    CV_SIZE
};

/* the fields of a _ttinfo, in dateutil 2.x's __slots__ order */
enum { F_OFFSET, F_DELTA, F_ISDST, F_ABBR, F_ISSTD, F_ISGMT, F_DSTOFFSET, N_FIELDS };
static const char *const ttinfo_fields[N_FIELDS] = {
    "offset", "delta", "isdst", "abbr", "isstd", "isgmt", "dstoffset",
};

/* the attributes of a tzfile's state */
enum {
    A_FILENAME, A_TRANS_LIST, A_TRANS_LIST_UTC, A_TRANS_IDX, A_TTINFO_LIST,
    A_TTINFO_STD, A_TTINFO_DST, A_TTINFO_BEFORE, A_TTINFO_FIRST, N_ATTRS
};
static const char *const tzfile_attrs[N_ATTRS] = {
    "_filename", "_trans_list", "_trans_list_utc", "_trans_idx", "_ttinfo_list",
    "_ttinfo_std", "_ttinfo_dst", "_ttinfo_before", "_ttinfo_first",
};

/* a time zone file has at most 256 local time types (tzfile(5)) */
#define MAX_TTINFOS 256

static int
bad(const char *why)
{
    PyErr_Format(PyExc_ValueError, "pseud: refusing a pickled dateutil 2.x tzfile: %s", why);
    return -1;
}

/* Borrow the values of exactly the n `names` of `state` (an exact dict,
 * no other key) into out[]. Returns 0, or -1 with an exception set. */
static int
exact_keys(PyObject *state, const char *const *names, int n, PyObject **out,
           const char *why)
{
    if (!PyDict_CheckExact(state) || PyDict_GET_SIZE(state) != n)
        return bad(why);
    for (int i = 0; i < n; i++) {
        PyObject *key = PyUnicode_FromString(names[i]);
        if (key == NULL)
            return -1;
        out[i] = PyDict_GetItemWithError(state, key);
        Py_DECREF(key);
        if (out[i] == NULL)
            return PyErr_Occurred() ? -1 : bad(why);
    }
    return 0;
}

/* an exact timedelta strictly within a day of zero; *seconds gets its
 * whole seconds when it has no microseconds (else it is refused) */
static int
delta_in_a_day(PyObject *obj, long *seconds)
{
    if (!PyDelta_CheckExact(obj) || PyDateTime_DELTA_GET_MICROSECONDS(obj) != 0)
        return 0;
    long s = PyDateTime_DELTA_GET_DAYS(obj) * 86400L + PyDateTime_DELTA_GET_SECONDS(obj);
    if (s <= -86400 || s >= 86400)
        return 0;
    *seconds = s;
    return 1;
}

/* Check a _ttinfo record's state, filling f[] (borrowed): every field of
 * the type dateutil 2.x gives it, the offsets under a day, the delta equal
 * to the offset. */
static int
check_ttinfo(tz_record *rec, PyObject **f)
{
    if (rec->state == NULL)
        return bad("a _ttinfo without its state");
    if (exact_keys(rec->state, ttinfo_fields, N_FIELDS, f,
                   "a _ttinfo state is not {offset, delta, isdst, abbr, isstd, isgmt, "
                   "dstoffset}") < 0)
        return -1;
    long offset, delta, dstoffset;
    if (!tz_check_small_int(f[F_OFFSET], 86400, &offset)
        || !delta_in_a_day(f[F_DELTA], &delta) || delta != offset)
        return bad("a _ttinfo offset is not an int of seconds under a day with "
                   "the same delta");
    if (!(PyBool_Check(f[F_ISDST]) || tz_check_small_int(f[F_ISDST], 128, NULL))
        || !PyBool_Check(f[F_ISSTD]) || !PyBool_Check(f[F_ISGMT]))
        return bad("a _ttinfo's isdst is not a small int, or isstd or isgmt not a bool");
    if (!tz_check_abbr(f[F_ABBR]))
        return bad("a _ttinfo abbreviation is not a short str");
    if (!delta_in_a_day(f[F_DSTOFFSET], &dstoffset))
        return bad("a _ttinfo dstoffset is not a timedelta under a day");
    return 0;
}

/* `obj` is one of the zone's checked _ttinfo records (or None, if
 * none_ok); *index gets its place in _ttinfo_list (-1 for None) */
static int
member(PyObject *obj, PyObject *list, int none_ok, Py_ssize_t *index)
{
    if (obj == Py_None && none_ok) {
        *index = -1;
        return 1;
    }
    if (!is_ttinfo_record(obj))
        return 0;
    Py_ssize_t i = ((tz_record *)obj)->index;
    if (i < 0 || i >= PySequence_Fast_GET_SIZE(list) || PySequence_Fast_GET_ITEM(list, i) != obj)
        return 0;
    *index = i;
    return 1;
}

static int
is_seq(PyObject *obj)
{
    return PyList_CheckExact(obj) || PyTuple_CheckExact(obj);
}

/* The checked zone: borrowed values of the tzfile state, and the index in
 * _ttinfo_list of each transition and of the four named _ttinfo. */
typedef struct {
    PyObject *a[N_ATTRS];
    PyObject *(*fields)[N_FIELDS];  /* per _ttinfo, PyMem */
    Py_ssize_t n_types;
    Py_ssize_t *trans;              /* per transition, PyMem */
    Py_ssize_t n_trans;
    Py_ssize_t named[4];            /* std, dst, before, first (-1: None) */
} zone;

static void
zone_free(zone *z)
{
    PyMem_Free(z->fields);
    PyMem_Free(z->trans);
}

static int
check_zone(tz_record *rec, zone *z)
{
    memset(z, 0, sizeof *z);
    if (rec->state == NULL)
        return bad("a tzfile without its state");
    if (exact_keys(rec->state, tzfile_attrs, N_ATTRS, z->a,
                   "its state has other attributes than dateutil 2.x's") < 0)
        return -1;
    PyObject **a = z->a;
    if (!tz_check_short_str(a[A_FILENAME], 1024, 0))
        return bad("_filename is not a str of at most 1024 characters");

    PyObject *types = a[A_TTINFO_LIST];
    if (!is_seq(types) || PySequence_Fast_GET_SIZE(types) < 1
        || PySequence_Fast_GET_SIZE(types) > MAX_TTINFOS)
        return bad("_ttinfo_list is not a list of 1 to 256 _ttinfo");
    z->n_types = PySequence_Fast_GET_SIZE(types);
    z->fields = PyMem_Calloc((size_t)z->n_types, sizeof *z->fields);
    if (z->fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < z->n_types; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(types, i);
        if (!is_ttinfo_record(t))
            return bad("_ttinfo_list holds something else than _ttinfo");
        tz_record *tr = (tz_record *)t;
        if (tr->index != -1)
            return bad("_ttinfo_list holds a _ttinfo twice");
        if (check_ttinfo(tr, z->fields[i]) < 0)
            return -1;
        tr->index = i;
    }

    PyObject *idx = a[A_TRANS_IDX];
    if (!tz_check_list_of(a[A_TRANS_LIST_UTC], tz_check_time)
        || !tz_check_list_of(a[A_TRANS_LIST], tz_check_time) || !is_seq(idx))
        return bad("_trans_list, _trans_list_utc or _trans_idx is not a list of "
                   "transition times");
    z->n_trans = PySequence_Fast_GET_SIZE(idx);
    if (PySequence_Fast_GET_SIZE(a[A_TRANS_LIST_UTC]) != z->n_trans
        || PySequence_Fast_GET_SIZE(a[A_TRANS_LIST]) != z->n_trans)
        return bad("_trans_list, _trans_list_utc and _trans_idx differ in length");
    z->trans = PyMem_Calloc((size_t)z->n_trans + 1, sizeof *z->trans);
    if (z->trans == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < z->n_trans; i++) {
        if (!member(PySequence_Fast_GET_ITEM(idx, i), types, 0, &z->trans[i]))
            return bad("_trans_idx holds something else than a _ttinfo of _ttinfo_list");
    }
    for (int k = 0; k < 4; k++) {
        if (!member(a[A_TTINFO_STD + k], types, 1, &z->named[k]))
            return bad("_ttinfo_std, _dst, _before or _first is not None or a "
                       "_ttinfo of _ttinfo_list");
    }
    return 0;
}

/* a new list of f(i) for i in 0..n-1; f returns new references */
static PyObject *
list_of(Py_ssize_t n, PyObject *(*f)(const zone *, Py_ssize_t), const zone *z)
{
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *v = f(z, i);
        if (v == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyObject *
trans_index(const zone *z, Py_ssize_t i)
{
    return PyLong_FromSsize_t(z->trans[i]);
}

static PyObject *
type_offset(const zone *z, Py_ssize_t i)
{
    return Py_NewRef(z->fields[i][F_OFFSET]);
}

static PyObject *
type_isdst(const zone *z, Py_ssize_t i)
{
    int dst = PyObject_IsTrue(z->fields[i][F_ISDST]);
    return dst < 0 ? NULL : PyLong_FromLong(dst);
}

static PyObject *
type_abbr(const zone *z, Py_ssize_t i)
{
    return Py_NewRef(z->fields[i][F_ABBR]);
}

/* dateutil >= 3: its _unpickle(tzfile, None, filename, data), data the
 * (trans_idx, trans_utc, utcoff, isdst, abbr, tz_str) it pickles itself
 * as; dateutil 2.x read no TZ string (tz_str None). */
static PyObject *
build_by_unpickle(PyObject *cv, const zone *z)
{
    PyObject *trans_utc = PySequence_List(z->a[A_TRANS_LIST_UTC]);
    PyObject *idx = trans_utc ? list_of(z->n_trans, trans_index, z) : NULL;
    PyObject *utcoff = idx ? list_of(z->n_types, type_offset, z) : NULL;
    PyObject *isdst = utcoff ? list_of(z->n_types, type_isdst, z) : NULL;
    PyObject *abbr = isdst ? list_of(z->n_types, type_abbr, z) : NULL;
    PyObject *data = abbr ? PyTuple_Pack(6, idx, trans_utc, utcoff, isdst, abbr, Py_None) : NULL;
    PyObject *res = NULL;
    if (data != NULL) {
        PyObject *args[4] = {PyTuple_GET_ITEM(cv, CV_TOKEN), Py_None, z->a[A_FILENAME], data};
        res = PyObject_Vectorcall(PyTuple_GET_ITEM(cv, CV_UNPICKLE), args, 4, NULL);
    }
    Py_XDECREF(trans_utc);
    Py_XDECREF(idx);
    Py_XDECREF(utcoff);
    Py_XDECREF(isdst);
    Py_XDECREF(abbr);
    Py_XDECREF(data);
    return res;
}

/* dateutil 2.x: what its own unpickling makes, from checked values:
 * tzfile(None, filename) (no file read), real _ttinfo objects, the
 * transitions as tuples (as 2.9 keeps them). */
static PyObject *
build_v2(PyObject *cv, const zone *z)
{
    PyObject *tz = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(cv, CV_TZFILE), Py_None,
                                                z->a[A_FILENAME], NULL);
    PyObject *types = tz ? PyList_New(z->n_types) : NULL;
    PyObject *idx = types ? PyTuple_New(z->n_trans) : NULL;
    PyObject *trans = idx ? PySequence_Tuple(z->a[A_TRANS_LIST]) : NULL;
    PyObject *trans_utc = trans ? PySequence_Tuple(z->a[A_TRANS_LIST_UTC]) : NULL;
    PyObject *values[N_ATTRS] = {NULL, trans, trans_utc, idx, types};
    PyObject *res = NULL;
    if (trans_utc == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < z->n_types; i++) {
        PyObject *t = PyObject_CallNoArgs(PyTuple_GET_ITEM(cv, CV_TTINFO));
        if (t == NULL)
            goto done;
        PyList_SET_ITEM(types, i, t);
        for (int f = 0; f < N_FIELDS; f++) {
            if (PyObject_SetAttrString(t, ttinfo_fields[f], z->fields[i][f]) < 0)
                goto done;
        }
    }
    for (Py_ssize_t i = 0; i < z->n_trans; i++)
        PyTuple_SET_ITEM(idx, i, Py_NewRef(PyList_GET_ITEM(types, z->trans[i])));
    for (int k = 0; k < 4; k++)
        values[A_TTINFO_STD + k] = z->named[k] < 0 ? Py_None
                                                  : PyList_GET_ITEM(types, z->named[k]);
    /* _filename is the constructor's */
    for (int k = A_TRANS_LIST; k < N_ATTRS; k++) {
        if (PyObject_SetAttrString(tz, tzfile_attrs[k], values[k]) < 0)
            goto done;
    }
    res = Py_NewRef(tz);
done:
    Py_XDECREF(tz);
    Py_XDECREF(types);
    Py_XDECREF(idx);
    Py_XDECREF(trans);
    Py_XDECREF(trans_utc);
    return res;
}

PyObject *
tz2_convert(PyObject *cv, tz_record *rec)
{
    if (cv == Py_None) {
        /* made by an allowlist that had a converter: never so */
        PyErr_SetString(PyExc_ValueError, "pseud: refusing a pickled dateutil 2.x tzfile: "
                        "no local dateutil to hold it");
        return NULL;
    }
    zone z;
    PyObject *res = NULL;
    if (check_zone(rec, &z) == 0)
        res = PyTuple_GET_ITEM(cv, CV_UNPICKLE) != Py_None ? build_by_unpickle(cv, &z)
                                                           : build_v2(cv, &z);
    zone_free(&z);
    return res;
}


/* ---- the allowlist entries ---------------------------------------------- */

/* A local dateutil 2.x that unpickles tzfile as this file expects: 2.7 and
 * later (tzfile(None, filename) reads no file, _set_tzdata exists). Sets
 * *tzfile and *ttinfo (new references), or leaves them NULL. */
static int
local_v2(PyObject *tz_mod, PyObject **tzfile, PyObject **ttinfo)
{
    *tzfile = *ttinfo = NULL;
    PyObject *cls = PyObject_GetAttrString(tz_mod, "tzfile");
    PyObject *tti = cls ? PyObject_GetAttrString(tz_mod, "_ttinfo") : NULL;
    if (tti == NULL) {
        Py_XDECREF(cls);
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int has = PyObject_HasAttrString(cls, "_set_tzdata");
    if (has && PyType_Check(cls) && PyType_Check(tti)) {
        *tzfile = cls;
        *ttinfo = tti;
        return 0;
    }
    Py_DECREF(cls);
    Py_DECREF(tti);
    return 0;
}

int
tz2_allow(PyObject *allowed, PyObject *tz_mod, PyObject *unpickle, PyObject *token,
          PyObject *zone_records, PyObject *error, PyObject **converter)
{
    PyDateTime_IMPORT;      /* this file's PyDelta_CheckExact */
    if (PyDateTimeAPI == NULL)
        return -1;
    *converter = NULL;
    PyObject *tzfile = NULL, *ttinfo = NULL;
    if (unpickle == Py_None && local_v2(tz_mod, &tzfile, &ttinfo) < 0)
        return -1;
    if (unpickle == Py_None && tzfile == NULL) {
        /* a dateutil that can hold no such zone: the names stay refused */
        *converter = Py_NewRef(Py_None);
        return 0;
    }
    int rc = -1;
    PyObject *maker = NULL, *standin = NULL, *cv = NULL;
    /* a _ttinfo is no zone: its records are no tzinfo */
    PyObject *ttinfo_records = tz_record_type_new(0);
    if (ttinfo_records != NULL)
        maker = tz_record_maker(ttinfo_records, TZ_RECORD_TTINFO, NULL);
    if (maker != NULL)
        standin = PyCFunction_New(&tzfile_standin_def, zone_records);
    if (standin != NULL)
        cv = PyTuple_Pack(CV_SIZE, unpickle, token, tzfile ? tzfile : Py_None,
                          ttinfo ? ttinfo : Py_None);
    if (cv != NULL && tz_allow_put(allowed, "dateutil.tz.tz", "tzfile", standin) == 0
        && tz_allow_class(allowed, "_ttinfo", maker, Py_None, error) == 0) {
        *converter = Py_NewRef(cv);
        rc = 0;
    }
    Py_XDECREF(cv);
    Py_XDECREF(standin);
    Py_XDECREF(maker);
    Py_XDECREF(ttinfo_records);
    Py_XDECREF(tzfile);
    Py_XDECREF(ttinfo);
    return rc;
}
