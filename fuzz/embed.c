/* LLVMFuzzerInitialize for the harnesses that embed Python: start the
 * interpreter (PYTHONMALLOC=malloc is set by fuzz/run.sh, so that ASan
 * sees every object) and import the extension, linked into the harness,
 * as the builtin module _pseud. */
#include "embed.h"

#include <stdio.h>
#include <stdlib.h>

PyMODINIT_FUNC PyInit__pseud(void);

pseud_state *fuzz_st;
static PyObject *fuzz_module;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (PyImport_AppendInittab("_pseud", PyInit__pseud) < 0)
        abort();
    Py_InitializeEx(0);
    fuzz_module = PyImport_ImportModule("_pseud");
    if (fuzz_module == NULL) {
        PyErr_Print();
        abort();
    }
    fuzz_st = PyModule_GetState(fuzz_module);
    if (fuzz_st == NULL || fuzz_st->default_packer == NULL)
        abort();
    return 0;
}

void
fuzz_expect_refusal(const char *what)
{
    if (!PyErr_Occurred()) {
        fprintf(stderr, "fuzz: %s returned NULL without an exception\n", what);
        abort();
    }
    if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_TypeError)
        || PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        return;
    }
    fprintf(stderr, "fuzz: %s raised an exception hostile input must not cause:\n", what);
    PyErr_Print();
    abort();
}
