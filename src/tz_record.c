/* The record types (tz_record.h): the objects that stand in for dateutil's
 * tzlocal, tzoffset, 2.x tzfile and 2.x _ttinfo while _pickle runs a
 * datetime pickle from the network, keeping the one state dict BUILD gives
 * them until tz_allow.c and tz_dateutil2.c have checked it. Nothing of a
 * record is ever returned to the program. */
#include "tz_record.h"

#include <datetime.h>

/* BUILD's __setstate__: keep the one dict. pickle_check allows one BUILD
 * with a dict; checked again, as a record is reachable from the pickle. */
static PyObject *
record_setstate(PyObject *self, PyObject *state)
{
    tz_record *rec = (tz_record *)self;
    if (rec->state != NULL || !PyDict_CheckExact(state)) {
        PyErr_SetString(PyExc_ValueError, "pseud: refusing a pickled dateutil object "
                        "BUILT twice or with a state that is not a dict");
        return NULL;
    }
    rec->state = Py_NewRef(state);
    Py_RETURN_NONE;
}

static int
record_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((tz_record *)self)->arg);
    Py_VISIT(((tz_record *)self)->state);
    return 0;
}

static int
record_clear(PyObject *self)
{
    Py_CLEAR(((tz_record *)self)->arg);
    Py_CLEAR(((tz_record *)self)->state);
    return 0;
}

static void
record_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    record_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef record_methods[] = {
    {"__setstate__", record_setstate, METH_O, "Keep the state BUILD gives."},
    {NULL},
};

static PyType_Slot record_slots[] = {
    {Py_tp_dealloc, record_dealloc},
    {Py_tp_traverse, record_traverse},
    {Py_tp_clear, record_clear},
    {Py_tp_methods, record_methods},
    {Py_tp_doc, "A dateutil object while a pickle is decoded; never returned."},
    {0, NULL},
};

static PyType_Spec record_spec = {
    .name = "pseud._pseud.tz_record",
    .basicsize = sizeof(tz_record),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = record_slots,
};

PyObject *
tz_record_type_new(int tzinfo)
{
    if (!tzinfo)
        return PyType_FromSpec(&record_spec);
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    return PyType_FromSpecWithBases(&record_spec, (PyObject *)PyDateTimeAPI->TZInfoType);
}

PyObject *
tz_record_new(PyObject *type, int kind, PyObject *arg)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    tz_record *rec = (tz_record *)tp->tp_alloc(tp, 0);
    if (rec == NULL)
        return NULL;
    rec->kind = kind;
    rec->arg = Py_XNewRef(arg);
    rec->index = -1;
    return (PyObject *)rec;
}

/* the maker's call; self is (type, kind, arg or None) */
static PyObject *
maker_call(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *arg = PyTuple_GET_ITEM(self, 2);
    return tz_record_new(PyTuple_GET_ITEM(self, 0),
                         (int)PyLong_AsLong(PyTuple_GET_ITEM(self, 1)),
                         arg == Py_None ? NULL : arg);
}

static PyMethodDef maker_def = {
    "tz_record", maker_call, METH_NOARGS, "A new record, for NEWOBJ.",
};

PyObject *
tz_record_maker(PyObject *type, int kind, PyObject *arg)
{
    PyObject *self = Py_BuildValue("(OiO)", type, kind, arg ? arg : Py_None);
    if (self == NULL)
        return NULL;
    PyObject *fn = PyCFunction_New(&maker_def, self);
    Py_DECREF(self);
    return fn;
}

/* known by the traverse function every record type shares */
tz_record *
tz_record_of(PyObject *obj)
{
    return Py_TYPE(obj)->tp_traverse == record_traverse ? (tz_record *)obj : NULL;
}
