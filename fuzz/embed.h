/* The embedded interpreter of the harnesses that decode into Python
 * objects: the extension is linked in and imported as a builtin module. */
#ifndef PSEUD_FUZZ_EMBED_H
#define PSEUD_FUZZ_EMBED_H

#include "module.h"

/* The extension's state once LLVMFuzzerInitialize has run. */
extern pseud_state *fuzz_st;

/* After a decode that returned NULL: clear the exception if it is one that
 * hostile input may cause (ValueError, TypeError, OverflowError), else
 * print it and abort -- anything else is a bug. */
void fuzz_expect_refusal(const char *what);

#endif
