/* Registry of RPC callables (docs/guide/registries.rst).
 *
 * A Registry maps a name to a short Python list of RPCCallable entries kept
 * in lookup order: the entries of non-default domains in registration
 * order, then at most one entry of domain 'default' at the end. A name
 * (str) has one entry per domain; registering (name, domain) again replaces
 * that entry in place.
 *
 * Lookup walks the registry's own entries, then each of its bases in order
 * (recursively). An entry of domain 'default' is accepted without running
 * any Python code, which makes the common case of the dispatcher (one
 * 'default' entry for the name) a dict lookup. Any other domain is
 * resolved through st->predicates (domain -> predicate class): the class
 * is instantiated with the RPCCallable and its test(**kwargs) asked; a
 * domain without a predicate class refuses. */
#include "registry.h"

#include <structmember.h>

/* ------------------------------------------------------------------ */
/* RPCCallable                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *func;
    PyObject *name;     /* str */
    PyObject *domain;   /* str */
    int with_identity;
    int is_default;     /* domain == 'default' */
    vectorcallfunc vectorcall;
} RPCCallableObject;

static PyObject *
rpccallable_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                       PyObject *kwnames)
{
    /* forwarding the same argument array keeps PY_VECTORCALL_ARGUMENTS_OFFSET
     * valid for the callee */
    return PyObject_Vectorcall(((RPCCallableObject *)self)->func, args, nargsf,
                               kwnames);
}

static int
is_default_domain(PyObject *domain)
{
    return PyUnicode_Check(domain)
        && PyUnicode_CompareWithASCIIString(domain, "default") == 0;
}

static PyObject *
rpccallable_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"func", "name", "domain", "with_identity", NULL};
    PyObject *func, *name, *domain = NULL;
    int with_identity = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OU|Up:RPCCallable", kwlist,
                                     &func, &name, &domain, &with_identity))
        return NULL;
    if (!PyCallable_Check(func)) {
        PyErr_Format(PyExc_TypeError,
                     "RPCCallable: func must be callable, not %.100s",
                     Py_TYPE(func)->tp_name);
        return NULL;
    }
    RPCCallableObject *self = (RPCCallableObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->func = Py_NewRef(func);
    self->name = Py_NewRef(name);
    if (domain == NULL) {
        self->domain = PyUnicode_FromString("default");
        if (self->domain == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    else {
        self->domain = Py_NewRef(domain);
    }
    self->with_identity = with_identity;
    self->is_default = is_default_domain(self->domain);
    self->vectorcall = rpccallable_vectorcall;
    return (PyObject *)self;
}

static int
rpccallable_traverse(RPCCallableObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->func);
    Py_VISIT(self->name);
    Py_VISIT(self->domain);
    return 0;
}

static int
rpccallable_clear(RPCCallableObject *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->name);
    Py_CLEAR(self->domain);
    return 0;
}

static void
rpccallable_dealloc(RPCCallableObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    rpccallable_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
rpccallable_repr(RPCCallableObject *self)
{
    return PyUnicode_FromFormat("<RPCCallable name=%R domain=%R with_identity=%s func=%R>",
                                self->name, self->domain,
                                self->with_identity ? "True" : "False",
                                self->func);
}

/* Instantiate the predicate of `callable`'s domain and call its
 * test(*args, **kwargs). Returns 1 (accepts), 0 (refuses, also when no
 * predicate class is registered for the domain) or -1 with an exception. */
static int
predicate_accepts(pseud_state *st, RPCCallableObject *callable, PyObject *args,
                  PyObject *kwargs)
{
    if (callable->is_default)
        return 1;
    if (st->predicates == NULL)
        return 0;
    PyObject *cls = PyDict_GetItemWithError(st->predicates, callable->domain);
    if (cls == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(cls);     /* the predicate code may change the dict */
    PyObject *predicate = PyObject_CallOneArg(cls, (PyObject *)callable);
    Py_DECREF(cls);
    if (predicate == NULL)
        return -1;
    PyObject *test = PyObject_GetAttrString(predicate, "test");
    Py_DECREF(predicate);
    if (test == NULL)
        return -1;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) == 0)
        kwargs = NULL;
    PyObject *result;
    if (args == NULL) {
        PyObject *empty = PyTuple_New(0);
        if (empty == NULL) {
            Py_DECREF(test);
            return -1;
        }
        result = PyObject_Call(test, empty, kwargs);
        Py_DECREF(empty);
    }
    else {
        result = PyObject_Call(test, args, kwargs);
    }
    Py_DECREF(test);
    if (result == NULL)
        return -1;
    int ok = PyObject_IsTrue(result);
    Py_DECREF(result);
    return ok;
}

static PyObject *
rpccallable_test(RPCCallableObject *self, PyObject *args, PyObject *kwargs)
{
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return NULL;
    int ok = predicate_accepts(st, self, args, kwargs);
    if (ok < 0)
        return NULL;
    return PyBool_FromLong(ok);
}

static PyObject *
rpccallable_get_with_identity(RPCCallableObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->with_identity);
}

static PyMethodDef rpccallable_methods[] = {
    {"test", (PyCFunction)(void (*)(void))rpccallable_test,
     METH_VARARGS | METH_KEYWORDS,
     "test($self, /, *args, **kwargs)\n--\n\nWhether the predicate of this callable's "
     "domain accepts (always True for 'default')."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef rpccallable_members[] = {
    {"func", T_OBJECT_EX, offsetof(RPCCallableObject, func), READONLY,
     "the registered callable"},
    {"name", T_OBJECT_EX, offsetof(RPCCallableObject, name), READONLY,
     "the name it is registered under"},
    {"domain", T_OBJECT_EX, offsetof(RPCCallableObject, domain), READONLY,
     "its domain, naming the predicate that guards it"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(RPCCallableObject, vectorcall),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef rpccallable_getset[] = {
    {"with_identity", (getter)rpccallable_get_with_identity, NULL,
     "whether the caller's identity is passed as first argument", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot rpccallable_slots[] = {
    {Py_tp_new, rpccallable_new},
    {Py_tp_dealloc, rpccallable_dealloc},
    {Py_tp_traverse, rpccallable_traverse},
    {Py_tp_clear, rpccallable_clear},
    {Py_tp_repr, rpccallable_repr},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_methods, rpccallable_methods},
    {Py_tp_members, rpccallable_members},
    {Py_tp_getset, rpccallable_getset},
    {Py_tp_doc, (void *)
     "RPCCallable(func, name, domain='default', with_identity=False)\n--\n\n"
     "A callable registered for RPC; calling it calls func."},
    {0, NULL},
};

static PyType_Spec rpccallable_spec = {
    .name = "pseud._pseud.RPCCallable",
    .basicsize = sizeof(RPCCallableObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = rpccallable_slots,
};

PyObject *
rpccallable_func(PyObject *callable)
{
    return ((RPCCallableObject *)callable)->func;
}

int
rpccallable_with_identity(PyObject *callable)
{
    return ((RPCCallableObject *)callable)->with_identity;
}

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *name;     /* str */
    PyObject *bases;    /* tuple of Registry */
    PyObject *entries;  /* dict name -> list of RPCCallable, in lookup order */
    Py_ssize_t count;   /* number of entries over all names */
} RegistryObject;

static PyObject *
registry_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "bases", NULL};
    PyObject *name = NULL, *bases_arg = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|UO:Registry", kwlist,
                                     &name, &bases_arg))
        return NULL;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;

    PyObject *bases;
    if (bases_arg == NULL || bases_arg == Py_None)
        bases = PyTuple_New(0);
    else
        bases = PySequence_Tuple(bases_arg);
    if (bases == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bases); i++) {
        PyObject *base = PyTuple_GET_ITEM(bases, i);
        if (!PyObject_TypeCheck(base, st->Registry_Type)) {
            PyErr_Format(PyExc_TypeError,
                         "Registry: bases must be Registry objects, not %.100s",
                         Py_TYPE(base)->tp_name);
            Py_DECREF(bases);
            return NULL;
        }
    }

    RegistryObject *self = (RegistryObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(bases);
        return NULL;
    }
    self->bases = bases;
    self->name = name != NULL ? Py_NewRef(name) : PyUnicode_FromString("");
    self->entries = PyDict_New();
    if (self->name == NULL || self->entries == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
registry_traverse(RegistryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->name);
    Py_VISIT(self->bases);
    Py_VISIT(self->entries);
    return 0;
}

static int
registry_clear(RegistryObject *self)
{
    Py_CLEAR(self->name);
    Py_CLEAR(self->bases);
    Py_CLEAR(self->entries);
    self->count = 0;
    return 0;
}

static void
registry_dealloc(RegistryObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    registry_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
registry_repr(RegistryObject *self)
{
    return PyUnicode_FromFormat("<Registry %R: %zd entries, %zd bases>",
                                self->name, self->count,
                                self->bases != NULL ? PyTuple_GET_SIZE(self->bases) : 0);
}

/* Look `name` up in `reg` then its bases. Returns 1 with a new reference
 * in *out, 0 when nothing accepted, -1 with an exception. */
static int
lookup_in(pseud_state *st, RegistryObject *reg, PyObject *name,
          PyObject *kwargs, PyObject **out)
{
    if (reg->entries == NULL)   /* cleared during collection */
        return 0;
    PyObject *list = PyDict_GetItemWithError(reg->entries, name);
    if (list == NULL) {
        if (PyErr_Occurred())
            return -1;
    }
    else {
        Py_ssize_t n = PyList_GET_SIZE(list);
        /* the hot path: one 'default' entry, no Python code run */
        if (n == 1) {
            RPCCallableObject *only = (RPCCallableObject *)PyList_GET_ITEM(list, 0);
            if (only->is_default) {
                *out = Py_NewRef((PyObject *)only);
                return 1;
            }
        }
        /* predicates run Python code that may alter the registry: own the
         * list and each entry while it is tested */
        Py_INCREF(list);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
            PyObject *entry = Py_NewRef(PyList_GET_ITEM(list, i));
            int ok = predicate_accepts(st, (RPCCallableObject *)entry, NULL, kwargs);
            if (ok != 0) {
                Py_DECREF(list);
                if (ok < 0) {
                    Py_DECREF(entry);
                    return -1;
                }
                *out = entry;
                return 1;
            }
            Py_DECREF(entry);
        }
        Py_DECREF(list);
    }

    PyObject *bases = reg->bases;
    if (bases == NULL || PyTuple_GET_SIZE(bases) == 0)
        return 0;
    if (Py_EnterRecursiveCall(" in registry lookup"))
        return -1;
    Py_INCREF(bases);
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bases) && rc == 0; i++)
        rc = lookup_in(st, (RegistryObject *)PyTuple_GET_ITEM(bases, i), name,
                       kwargs, out);
    Py_DECREF(bases);
    Py_LeaveRecursiveCall();
    return rc;
}

static void
set_not_found(pseud_state *st, PyObject *name)
{
    if (PyUnicode_Check(name)) {
        PyErr_SetObject(st->ServiceNotFoundError, name);
        return;
    }
    PyObject *r = PyObject_Repr(name);
    if (r == NULL) {
        PyErr_Clear();
        r = PyUnicode_FromString("<unrepresentable name>");
        if (r == NULL)
            return;
    }
    PyErr_SetObject(st->ServiceNotFoundError, r);
    Py_DECREF(r);
}

PyObject *
registry_lookup(pseud_state *st, PyObject *registry, PyObject *name,
                PyObject *predicate_kwargs)
{
    if (!PyObject_TypeCheck(registry, st->Registry_Type)) {
        PyErr_Format(PyExc_TypeError, "registry must be a Registry, not %.100s",
                     Py_TYPE(registry)->tp_name);
        return NULL;
    }
    if (!PyUnicode_Check(name)) {
        set_not_found(st, name);
        return NULL;
    }
    PyObject *found = NULL;
    int rc = lookup_in(st, (RegistryObject *)registry, name, predicate_kwargs, &found);
    if (rc < 0)
        return NULL;
    if (rc == 0) {
        set_not_found(st, name);
        return NULL;
    }
    return found;
}

static PyObject *
registry_register(RegistryObject *self, PyObject *arg)
{
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return NULL;
    if (!PyObject_TypeCheck(arg, st->RPCCallable_Type)) {
        PyErr_Format(PyExc_TypeError,
                     "Registry.register() takes an RPCCallable, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (self->entries == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Registry has been cleared");
        return NULL;
    }
    RPCCallableObject *callable = (RPCCallableObject *)arg;
    PyObject *list = PyDict_GetItemWithError(self->entries, callable->name);
    if (list == NULL) {
        if (PyErr_Occurred())
            return NULL;
        list = PyList_New(1);
        if (list == NULL)
            return NULL;
        PyList_SET_ITEM(list, 0, Py_NewRef(arg));
        int rc = PyDict_SetItem(self->entries, callable->name, list);
        Py_DECREF(list);
        if (rc < 0)
            return NULL;
        self->count++;
        Py_RETURN_NONE;
    }

    /* same (name, domain): replace in place, keeping its position */
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        RPCCallableObject *old = (RPCCallableObject *)PyList_GET_ITEM(list, i);
        int eq = PyUnicode_Compare(old->domain, callable->domain);
        if (eq == -1 && PyErr_Occurred())
            return NULL;
        if (eq == 0) {
            if (PyList_SetItem(list, i, Py_NewRef(arg)) < 0)
                return NULL;
            Py_RETURN_NONE;
        }
    }
    /* non-default domains in registration order before the 'default' one */
    int rc;
    if (!callable->is_default && n > 0
        && ((RPCCallableObject *)PyList_GET_ITEM(list, n - 1))->is_default)
        rc = PyList_Insert(list, n - 1, arg);
    else
        rc = PyList_Append(list, arg);
    if (rc < 0)
        return NULL;
    self->count++;
    Py_RETURN_NONE;
}

static PyObject *
registry_unregister(RegistryObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "domain", NULL};
    PyObject *name, *domain = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|U:unregister", kwlist,
                                     &name, &domain))
        return NULL;
    if (self->entries == NULL || !PyUnicode_Check(name))
        Py_RETURN_FALSE;
    PyObject *list = PyDict_GetItemWithError(self->entries, name);
    if (list == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_FALSE;
    }
    Py_INCREF(list);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        RPCCallableObject *entry = (RPCCallableObject *)PyList_GET_ITEM(list, i);
        int match;
        if (domain == NULL) {
            match = entry->is_default;
        }
        else {
            int eq = PyUnicode_Compare(entry->domain, domain);
            if (eq == -1 && PyErr_Occurred()) {
                Py_DECREF(list);
                return NULL;
            }
            match = (eq == 0);
        }
        if (!match)
            continue;
        if (PySequence_DelItem(list, i) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        self->count--;
        if (PyList_GET_SIZE(list) == 0
            && PyDict_DelItem(self->entries, name) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(list);
        Py_RETURN_TRUE;
    }
    Py_DECREF(list);
    Py_RETURN_FALSE;
}

static PyObject *
registry_lookup_meth(RegistryObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *name;
    if (!PyArg_UnpackTuple(args, "lookup", 1, 1, &name))
        return NULL;
    pseud_state *st = pseud_state_of((PyObject *)self);
    if (st == NULL)
        return NULL;
    return registry_lookup(st, (PyObject *)self, name, kwds);
}

/* Add the names visible from `reg` (own and bases) to the set `acc`. */
static int
collect_names(RegistryObject *reg, PyObject *acc)
{
    if (reg->entries != NULL) {
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(reg->entries, &pos, &key, &value)) {
            /* hashing a str subclass runs Python, which may drop the key */
            Py_INCREF(key);
            int rc = PySet_Add(acc, key);
            Py_DECREF(key);
            if (rc < 0)
                return -1;
        }
    }
    if (reg->bases == NULL)
        return 0;
    if (Py_EnterRecursiveCall(" in Registry.names()"))
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(reg->bases) && rc == 0; i++)
        rc = collect_names((RegistryObject *)PyTuple_GET_ITEM(reg->bases, i), acc);
    Py_LeaveRecursiveCall();
    return rc;
}

static PyObject *
registry_names(RegistryObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *acc = PySet_New(NULL);
    if (acc == NULL)
        return NULL;
    if (collect_names(self, acc) < 0) {
        Py_DECREF(acc);
        return NULL;
    }
    PyObject *names = PySequence_List(acc);
    Py_DECREF(acc);
    if (names == NULL)
        return NULL;
    if (PyList_Sort(names) < 0) {
        Py_DECREF(names);
        return NULL;
    }
    return names;
}

/* 1 when `name` has an entry in `reg` or one of its bases, whatever the
 * predicates would say; 0 otherwise; -1 on error. */
static int
contains_in(RegistryObject *reg, PyObject *name)
{
    if (reg->entries != NULL) {
        int rc = PyDict_Contains(reg->entries, name);
        if (rc != 0)
            return rc;
    }
    if (reg->bases == NULL)
        return 0;
    if (Py_EnterRecursiveCall(" in Registry.__contains__"))
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(reg->bases) && rc == 0; i++)
        rc = contains_in((RegistryObject *)PyTuple_GET_ITEM(reg->bases, i), name);
    Py_LeaveRecursiveCall();
    return rc;
}

static int
registry_contains(RegistryObject *self, PyObject *name)
{
    if (!PyUnicode_Check(name))
        return 0;
    return contains_in(self, name);
}

static Py_ssize_t
registry_len(RegistryObject *self)
{
    return self->count;
}

static PyMethodDef registry_methods[] = {
    {"register", (PyCFunction)registry_register, METH_O,
     "register($self, rpc_callable, /)\n--\n\nAdd it, replacing the entry of the same "
     "(name, domain)."},
    {"unregister", (PyCFunction)(void (*)(void))registry_unregister,
     METH_VARARGS | METH_KEYWORDS,
     "unregister($self, /, name, domain='default')\n--\n\nRemove that entry; return "
     "whether there was one."},
    {"lookup", (PyCFunction)(void (*)(void))registry_lookup_meth,
     METH_VARARGS | METH_KEYWORDS,
     "lookup($self, name, /, **predicate_kwargs)\n--\n\nThe RPCCallable, or raise "
     "ServiceNotFoundError(name)."},
    {"names", (PyCFunction)registry_names, METH_NOARGS,
     "names($self, /)\n--\n\nSorted list of the names visible from this registry "
     "(own and bases)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef registry_members[] = {
    {"name", T_OBJECT_EX, offsetof(RegistryObject, name), READONLY,
     "name of the registry"},
    {"bases", T_OBJECT_EX, offsetof(RegistryObject, bases), READONLY,
     "tuple of the registries looked up after this one"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot registry_slots[] = {
    {Py_tp_new, registry_new},
    {Py_tp_dealloc, registry_dealloc},
    {Py_tp_traverse, registry_traverse},
    {Py_tp_clear, registry_clear},
    {Py_tp_repr, registry_repr},
    {Py_tp_methods, registry_methods},
    {Py_tp_members, registry_members},
    {Py_sq_contains, registry_contains},
    {Py_sq_length, registry_len},
    {Py_tp_doc, (void *)
     "Registry(name='', bases=())\n--\n\n"
     "RPC callables by (name, domain); lookups fall back on the bases."},
    {0, NULL},
};

static PyType_Spec registry_spec = {
    .name = "pseud._pseud.Registry",
    .basicsize = sizeof(RegistryObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = registry_slots,
};

/* ------------------------------------------------------------------ */
/* module level                                                        */
/* ------------------------------------------------------------------ */

static PyObject *
register_predicate_class(PyObject *module, PyObject *args)
{
    PyObject *name, *cls;
    if (!PyArg_ParseTuple(args, "UO:register_predicate_class", &name, &cls))
        return NULL;
    if (!PyCallable_Check(cls)) {
        PyErr_Format(PyExc_TypeError,
                     "register_predicate_class: the predicate class must be "
                     "callable, not %.100s", Py_TYPE(cls)->tp_name);
        return NULL;
    }
    pseud_state *st = PyModule_GetState(module);
    if (st == NULL || st->predicates == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pseud._pseud is not initialised");
        return NULL;
    }
    if (PyDict_SetItem(st->predicates, name, cls) < 0)
        return NULL;
    return Py_NewRef(cls);
}

static PyMethodDef registry_module_methods[] = {
    {"register_predicate_class", register_predicate_class, METH_VARARGS,
     "register_predicate_class($module, name, cls, /)\n--\n\nMake cls the predicate of domain "
     "`name`; cls(rpc_callable).test(**kwargs) decides."},
    {NULL, NULL, 0, NULL},
};

int
registry_init_module(PyObject *module, pseud_state *st)
{
    st->RPCCallable_Type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &rpccallable_spec, NULL);
    if (st->RPCCallable_Type == NULL
        || PyModule_AddType(module, st->RPCCallable_Type) < 0)
        return -1;
    st->Registry_Type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &registry_spec, NULL);
    if (st->Registry_Type == NULL
        || PyModule_AddType(module, st->Registry_Type) < 0)
        return -1;

    st->predicates = PyDict_New();
    if (st->predicates == NULL
        || PyModule_AddObjectRef(module, "predicates", st->predicates) < 0)
        return -1;

    st->global_registry = PyObject_CallFunction((PyObject *)st->Registry_Type,
                                                "s", "global");
    if (st->global_registry == NULL
        || PyModule_AddObjectRef(module, "registry", st->global_registry) < 0)
        return -1;

    return PyModule_AddFunctions(module, registry_module_methods);
}
