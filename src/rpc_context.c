/* The libzmq context a pseud peer's socket lives in (docs/guide/calls.rst,
 * "context= and inproc with pyzmq"): pseud's own, the one of a pyzmq
 * Context given as upstream's context= option, or, for a peer given none,
 * pyzmq's zmq.green.Context.instance() as upstream's default was, each
 * when that is possible. This file owns the choice and the default kept
 * in the module state (default_context).
 *
 * inproc:// endpoints exist inside one libzmq context, so a pyzmq socket
 * reaches a pseud endpoint there only if both sockets live in the same
 * context: the same zmq::ctx_t object, driven by the same copy of libzmq.
 * A pyzmq wheel carries its own libzmq (a second copy in the process):
 * its contexts are objects of that copy, and using them from ours would
 * be undefined behaviour even when the versions agree. So a context is
 * shared only when the libzmq that pyzmq's backend calls is the library
 * pseud calls: the backend module's `zmq_ctx_new`, looked up through
 * dlsym on that module (which searches its dependencies), must lie in
 * the same loaded object as ours (dladdr).
 *
 * Also kept: contexts with more than one I/O thread. disconnect() waits
 * for the I/O thread to handle what it was sent (rpc.c, wait_io_thread),
 * which holds only for a context with one.
 *
 * context= given (rpc_context_choose): a context that cannot be shared
 * leaves the RPC in pseud's context, says why once, and inproc:// is
 * refused on it (nothing of the pyzmq side could reach it; tcp:// and
 * ipc:// work from any context).
 *
 * No context= (pseud_default_context; pseud's own Context given counts as
 * none). Upstream's gevent peers lived in zmq.green.Context.instance(), so
 * a raw socket of that context reached them over inproc://. pseud does the
 * same when pyzmq is already imported ('zmq' in sys.modules: pseud never
 * imports it, which costs import time and, for a wheel, loads a second
 * libzmq for nothing), its libzmq is ours (checked on pyzmq's Context
 * class: nothing is created when it is not) and that instance has one I/O
 * thread. Otherwise pseud's own context, silently: nobody asked for
 * sharing, and pseud peers reach each other over inproc:// there as ever.
 * Decided once per process, when the first such peer is made, and kept:
 * every later peer without context= goes to the same place whatever is
 * imported afterwards, so pseud peers keep reaching each other over
 * inproc:// (the caveat, documented: pyzmq imported only after that first
 * peer is not shared). The module keeps the pyzmq Context and never
 * terminates it (module.c terminates pseud's own only). pyzmq's instance()
 * is asked again for each peer, as upstream did: it makes a new context
 * once its instance is closed, or in a forked child, and peers follow.
 * Secured peers stay in pseud's own context either way: the ZAP handler
 * of the security plugins lives there (libzmq allows one per context),
 * and libzmq runs no security mechanism on inproc://, so there is
 * nothing to share. Helper sockets (rpc.context) stay there too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* dladdr, RTLD_NOLOAD (as pyconfig.h defines it) */
#endif
#include "rpc_object.h"

#include <dlfcn.h>
#include <string.h>
#include <zmq.h>

/* The loaded object holding `addr` (its path in *path), or NULL. */
static void *
object_of(void *addr, const char **path)
{
    Dl_info info;
    if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fbase == NULL)
        return NULL;
    *path = info.dli_fname != NULL ? info.dli_fname : "?";
    return info.dli_fbase;
}

/* The file of the first extension module among the classes of `type`'s
 * MRO (pyzmq's backend defines its Context base class), new str, or NULL
 * without an exception when there is none. */
static PyObject *
extension_file_of(PyTypeObject *type)
{
    PyObject *mro = type->tp_mro;
    PyObject *modules = PyImport_GetModuleDict();      /* borrowed */
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *name = PyObject_GetAttrString(PyTuple_GET_ITEM(mro, i), "__module__");
        PyObject *mod = name != NULL && PyUnicode_Check(name)
                        ? PyDict_GetItemWithError(modules, name) : NULL;
        Py_XDECREF(name);
        PyObject *file = mod != NULL ? PyObject_GetAttrString(mod, "__file__") : NULL;
        PyErr_Clear();
        if (file == NULL)
            continue;
        const char *f = PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : NULL;
        PyErr_Clear();
        size_t n = f != NULL ? strlen(f) : 0;
        if (n > 3 && strcmp(f + n - 3, ".so") == 0)
            return file;
        Py_DECREF(file);
    }
    return NULL;
}

/* Is the libzmq of the contexts of class `type` ours? 1 yes; 0 no, with
 * *why a new str saying what differs; -1 with an exception. */
static int
same_libzmq(PyTypeObject *type, PyObject **why)
{
    const char *ours_path = NULL, *theirs_path = NULL;
    void *ours = object_of((void *)&zmq_ctx_new, &ours_path);
    PyObject *file = extension_file_of(type);
    if (file == NULL) {
        *why = PyUnicode_FromFormat(
            "its class (%.200s) comes from no extension module linking libzmq",
            type->tp_name);
        return *why == NULL ? -1 : 0;
    }
    void *theirs = NULL;
    void *handle = dlopen(PyUnicode_AsUTF8(file), RTLD_LAZY | RTLD_NOLOAD);
    if (handle != NULL) {
        theirs = object_of(dlsym(handle, "zmq_ctx_new"), &theirs_path);
        dlclose(handle);
    }
    if (ours != NULL && theirs == ours) {
        Py_DECREF(file);
        return 1;
    }
    *why = theirs != NULL
        ? PyUnicode_FromFormat("that pyzmq uses the libzmq of %s, pseud the one of %s",
                               theirs_path, ours_path != NULL ? ours_path : "?")
        : PyUnicode_FromFormat("no libzmq could be found behind %U", file);
    Py_DECREF(file);
    return *why == NULL ? -1 : 0;
}

/* Has the libzmq context `ptr` one I/O thread? 1 yes; 0 no, with *why a
 * new str; -1 with an exception. */
static int
one_io_thread(void *ptr, PyObject **why)
{
    int threads = zmq_ctx_get(ptr, ZMQ_IO_THREADS);
    if (threads == 1)
        return 1;
    *why = threads < 0
        ? PyUnicode_FromFormat("its libzmq context refuses zmq_ctx_get (%s)",
                               zmq_strerror(zmq_errno()))
        : PyUnicode_FromFormat("it has %d I/O threads, and pseud's disconnect() "
                               "needs a context with one", threads);
    return *why == NULL ? -1 : 0;
}

/* The address a Context exposes as `underlying` (pyzmq's and ours), or
 * NULL with an exception. */
static void *
underlying_of(PyObject *context)
{
    PyObject *u = PyObject_GetAttrString(context, "underlying");
    if (u == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "pseud: context= must be a pyzmq Context (with .underlying) "
                         "or None, not %.100s", Py_TYPE(context)->tp_name);
        }
        return NULL;
    }
    void *ptr = PyLong_Check(u) ? PyLong_AsVoidPtr(u) : NULL;
    Py_DECREF(u);
    if (ptr == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "pseud: context= is closed (its underlying "
                        "context is gone)");
    return ptr;
}

/* ---- the default: peers given no context= */

/* The pyzmq Context peers given no context= share, new reference, or None
 * (pseud's own) with *why a new str saying why; NULL with an exception. */
static PyObject *
pyzmq_default(PyObject **why)
{
    PyObject *name = PyUnicode_FromString("zmq");
    if (name == NULL)
        return NULL;
    PyObject *zmq = PyImport_GetModule(name);
    Py_DECREF(name);
    if (zmq == NULL) {
        if (PyErr_Occurred())
            return NULL;
        *why = PyUnicode_FromString("pyzmq is not imported");
        return *why == NULL ? NULL : Py_NewRef(Py_None);
    }
    /* first the class: a pyzmq of another libzmq gets no context made */
    PyObject *cls = PyObject_GetAttrString(zmq, "Context");
    Py_DECREF(zmq);
    if (cls == NULL || !PyType_Check(cls)) {
        PyErr_Clear();
        Py_XDECREF(cls);
        *why = PyUnicode_FromString("zmq.Context is not a class");
        return *why == NULL ? NULL : Py_NewRef(Py_None);
    }
    int same = same_libzmq((PyTypeObject *)cls, why);
    Py_DECREF(cls);
    if (same <= 0)
        return same < 0 ? NULL : Py_NewRef(Py_None);
    /* pyzmq is imported: its gevent flavour is a small addition, and its
     * instance() is the one upstream's peers lived in (pyzmq keeps it
     * apart from zmq.Context.instance()) */
    PyObject *green = PyImport_ImportModule("zmq.green");
    cls = green != NULL ? PyObject_GetAttrString(green, "Context") : NULL;
    Py_XDECREF(green);
    if (cls == NULL) {
        PyErr_Clear();
        *why = PyUnicode_FromString("zmq.green.Context cannot be imported");
        return *why == NULL ? NULL : Py_NewRef(Py_None);
    }
    PyObject *ctx = PyObject_CallMethod(cls, "instance", NULL);
    Py_DECREF(cls);
    void *ptr = ctx != NULL ? underlying_of(ctx) : NULL;
    int one = ptr != NULL ? one_io_thread(ptr, why) : -1;
    if (one <= 0) {
        Py_XDECREF(ctx);
        return one < 0 ? NULL : Py_NewRef(Py_None);
    }
    return ctx;
}

void *
pseud_default_context(pseud_state *st, int secured, PyObject **keep)
{
    *keep = NULL;
    if (secured)
        return st->zmq_ctx;
    if (st->default_context == NULL) {
        PyObject *why = NULL;
        PyObject *choice = pyzmq_default(&why);
        if (choice == NULL)
            return NULL;        /* undecided: the next peer tries again */
        if (choice == Py_None)
            pseud_log(st, "debug", "pseud: peers without context= live in pseud's own "
                      "libzmq context: %U", why);
        else
            pseud_log(st, "debug", "pseud: peers without context= live in pyzmq's "
                      "zmq.green.Context.instance(): its libzmq is pseud's");
        Py_XDECREF(why);
        if (st->default_context == NULL)    /* another thread may have decided meanwhile */
            st->default_context = choice;
        else
            Py_DECREF(choice);
    }
    if (st->default_context == Py_None)
        return st->zmq_ctx;
    PyObject *ctx = PyObject_CallMethod((PyObject *)Py_TYPE(st->default_context),
                                        "instance", NULL);
    if (ctx == NULL)
        return NULL;
    PyObject *why = NULL;
    void *ptr = underlying_of(ctx);
    int one = ptr != NULL ? one_io_thread(ptr, &why) : -1;
    if (one <= 0) {
        if (one == 0)
            pseud_log(st, "debug", "pseud: this peer lives in pseud's own libzmq context: "
                      "pyzmq's new Context.instance() cannot be shared: %U", why);
        Py_XDECREF(why);
        Py_DECREF(ctx);
        return one < 0 ? NULL : st->zmq_ctx;
    }
    Py_SETREF(st->default_context, Py_NewRef(ctx));  /* pyzmq may have made a new one */
    *keep = ctx;
    return ptr;
}

/* ---- context= given */

/* Keep pseud's context, saying why once per process. 0 / -1. */
static int
keep_ours(RPCObject *self, PyObject *why)
{
    Py_XSETREF(self->context_foreign, why);
    if (!self->st->context_warned) {
        self->st->context_warned = 1;
        pseud_log(self->st, "warning",
                  "pseud: context= cannot be shared: %U. pseud keeps its own libzmq "
                  "context: tcp:// and ipc:// work as usual, but an inproc:// endpoint "
                  "of pseud cannot be reached from that context. To share it, install "
                  "a pyzmq linked to the libzmq pseud uses (pip install --no-binary "
                  "pyzmq pyzmq, with the system libzmq)", why);
    }
    return 0;
}

int
rpc_context_choose(RPCObject *self, PyObject *context)
{
    pseud_state *st = self->st;
    self->zmq_ctx = st->zmq_ctx;
    Py_CLEAR(self->context);
    Py_CLEAR(self->context_foreign);
    if (context == NULL || context == Py_None || PyObject_TypeCheck(context, st->Context_Type)) {
        void *ptr = pseud_default_context(st, !self->auth_noop, &self->context);
        if (ptr == NULL)
            return -1;
        self->zmq_ctx = ptr;
        return 0;
    }
    void *ptr = underlying_of(context);
    if (ptr == NULL)
        return -1;
    if (ptr == st->zmq_ctx)
        return 0;
    if (!self->auth_noop) {
        pseud_log(st, "debug", "pseud: a secured RPC keeps pseud's own context");
        return 0;
    }
    PyObject *why = NULL;
    int same = same_libzmq(Py_TYPE(context), &why);
    if (same < 0)
        return -1;
    if (!same)
        return keep_ours(self, why);
    int one = one_io_thread(ptr, &why);
    if (one <= 0)
        return one < 0 ? -1 : keep_ours(self, why);
    self->zmq_ctx = ptr;
    self->context = Py_NewRef(context);
    return 0;
}

int
rpc_context_check_endpoint(RPCObject *self, PyObject *endpoint)
{
    if (self->context_foreign == NULL
        || strncmp(PyBytes_AS_STRING(endpoint), "inproc://", 9) != 0)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "pseud: %R is in pseud's own libzmq context, which the context= "
                 "given cannot reach (%U): install a pyzmq linked to the libzmq pseud "
                 "uses (pip install --no-binary pyzmq pyzmq), use ipc:// or tcp://, "
                 "or give no context=", endpoint, self->context_foreign);
    return -1;
}
