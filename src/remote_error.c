/* Exceptions across the wire (docs/guide/errors.rst): the ERROR body a failing
 * call answers with, and the exception a caller rebuilds from one. The
 * class name comes from the peer, so it is untrusted. */
#include "remote_error.h"
#include "errors.h"

#include <string.h>

/* The remote traceback framed and indented, as upstream prints it. */
PyObject *
format_remote_traceback(PyObject *text)
{
    PyObject *lines = PyUnicode_Splitlines(text, 0);
    if (lines == NULL)
        return NULL;
    PyObject *sep = PyUnicode_FromString("\n    ");
    PyObject *body = sep ? PyUnicode_Join(sep, lines) : NULL;
    Py_XDECREF(sep);
    Py_ssize_t n = PyList_GET_SIZE(lines);
    Py_DECREF(lines);
    if (body == NULL)
        return NULL;
    PyObject *res = n > 0
        ? PyUnicode_FromFormat("\n-- Beginning of remote traceback --\n    %U\n-- End of remote traceback --\n", body)
        : PyUnicode_FromString("\n-- Beginning of remote traceback --\n-- End of remote traceback --\n");
    Py_DECREF(body);
    return res;
}

static PyObject *
format_remote_traceback_py(PyObject *module, PyObject *arg)
{
    (void)module;
    PyObject *text = PyObject_Str(arg);
    if (text == NULL)
        return NULL;
    PyObject *res = format_remote_traceback(text);
    Py_DECREF(text);
    return res;
}

/* (class name, str(exc), text) of `exc` (NULL: `default_cls`, ''). The
 * message is a str on the wire whatever happens. New tuple, or NULL with
 * no exception set. */
static PyObject *
triple_of(PyObject *exc, const char *default_cls, PyObject *text)
{
    PyObject *msg = exc != NULL ? PyObject_Str(exc) : NULL;
    if (msg == NULL) {
        PyErr_Clear();
        msg = PyUnicode_FromString("");
    }
    const char *cls = exc != NULL ? Py_TYPE(exc)->tp_name : default_cls;
    const char *dot = strrchr(cls, '.');
    PyObject *res = msg == NULL ? NULL
        : Py_BuildValue("(sOO)", dot ? dot + 1 : cls, msg, text != NULL ? text : Py_None);
    Py_XDECREF(msg);
    if (res == NULL)
        PyErr_Clear();
    return res;
}

/* traceback.format_exception(exc) as one str, or NULL (no exception set). */
static PyObject *
traceback_text(PyObject *exc)
{
    PyObject *text = NULL;
    PyObject *tbmod = PyImport_ImportModule("traceback");
    if (tbmod != NULL) {
        PyObject *tb = PyException_GetTraceback(exc);
        PyObject *lines = PyObject_CallMethod(tbmod, "format_exception", "OOO",
                                              (PyObject *)Py_TYPE(exc), exc,
                                              tb != NULL ? tb : Py_None);
        Py_XDECREF(tb);
        if (lines != NULL) {
            PyObject *empty = PyUnicode_FromString("");
            if (empty != NULL)
                text = PyUnicode_Join(empty, lines);
            Py_XDECREF(empty);
            Py_DECREF(lines);
        }
        Py_DECREF(tbmod);
    }
    PyErr_Clear();
    return text;
}

PyObject *
remote_error_triple(pseud_state *st)
{
    PyObject *exc = errors_save();
    PyObject *text = exc != NULL ? traceback_text(exc) : NULL;
    PyObject *res = triple_of(exc, "Exception", text);
    if (st->logger != NULL && exc != NULL) {
        PyObject *kw = Py_BuildValue("{sO}", "exc_info", exc);
        PyObject *meth = PyObject_GetAttrString(st->logger, "error");
        PyObject *a = Py_BuildValue("(s)", "pseud: job failed");
        if (kw && meth && a) {
            PyObject *r = PyObject_Call(meth, a, kw);
            Py_XDECREF(r);
        }
        Py_XDECREF(kw);
        Py_XDECREF(meth);
        Py_XDECREF(a);
        PyErr_Clear();
    }
    Py_XDECREF(text);
    Py_XDECREF(exc);
    return res;
}

PyObject *
remote_error_cannot_travel(void)
{
    PyObject *exc = errors_save();
    PyObject *empty = PyUnicode_FromString("");
    PyObject *res = empty != NULL ? triple_of(exc, "TypeError", empty) : NULL;
    Py_XDECREF(empty);
    Py_XDECREF(exc);
    PyErr_Clear();
    return res;
}

PyObject *
remote_error_refusal(const char *cls, PyObject *message)
{
    PyObject *res = Py_BuildValue("(sOs)", cls, message, "");
    if (res == NULL)
        PyErr_Clear();
    return res;
}

/* Build the exception a remote ERROR stands for (docs/guide/errors.rst). The class
 * name is untrusted: only Exception subclasses are rebuilt. */
PyObject *
remote_error_rebuild(pseud_state *st, PyObject *triple)
{
    PyObject *klass, *message, *tb;
    if (!PyTuple_Check(triple) || PyTuple_GET_SIZE(triple) != 3
        || !PyUnicode_Check(klass = PyTuple_GET_ITEM(triple, 0))
        || !PyUnicode_Check(message = PyTuple_GET_ITEM(triple, 1))) {
        return PyObject_CallFunction(PyExc_Exception, "s",
                                     "pseud: malformed ERROR reply from the peer");
    }
    tb = PyTuple_GET_ITEM(triple, 2);
    PyObject *tbtext = PyUnicode_Check(tb) ? Py_NewRef(tb) : PyObject_Str(tb);
    if (tbtext == NULL)
        return NULL;
    PyObject *formatted = format_remote_traceback(tbtext);
    Py_DECREF(tbtext);
    if (formatted == NULL)
        return NULL;
    PyObject *full = PyUnicode_FromFormat("%U\n%U", formatted, message);
    Py_DECREF(formatted);
    if (full == NULL)
        return NULL;

    PyObject *cls = NULL;
    PyObject *builtins = PyEval_GetBuiltins();  /* borrowed */
    PyObject *candidate = builtins ? PyDict_GetItemWithError(builtins, klass) : NULL;
    if (candidate == NULL && !PyErr_Occurred()) {
        const char *k = PyUnicode_AsUTF8(klass);
        if (k == NULL)
            PyErr_Clear();
        else if (strcmp(k, "ServiceNotFoundError") == 0)
            candidate = st->ServiceNotFoundError;
        else if (strcmp(k, "TimeoutError") == 0)
            candidate = st->TimeoutError;
        else if (strcmp(k, "UnauthorizedError") == 0)
            candidate = st->UnauthorizedError;
    }
    PyErr_Clear();
    if (candidate != NULL && PyType_Check(candidate)
        && PyType_IsSubtype((PyTypeObject *)candidate, (PyTypeObject *)PyExc_Exception))
        cls = candidate;
    PyObject *exc = NULL;
    if (cls != NULL) {
        exc = PyObject_CallOneArg(cls, full);
        if (exc == NULL)   /* e.g. UnicodeDecodeError wants five arguments */
            PyErr_Clear();
    }
    if (exc == NULL) {
        PyObject *text = PyUnicode_FromFormat("%U\n%U", klass, full);
        if (text != NULL) {
            exc = PyObject_CallOneArg(PyExc_Exception, text);
            Py_DECREF(text);
        }
    }
    Py_DECREF(full);
    return exc;
}

static PyMethodDef remote_error_functions[] = {
    {"format_remote_traceback", format_remote_traceback_py, METH_O,
     "format_remote_traceback($module, text, /)\n--\n\nA remote traceback framed for display."},
    {NULL},
};

int
remote_error_init_module(PyObject *module)
{
    return PyModule_AddFunctions(module, remote_error_functions);
}
