/* Bounded logging of what peers cause (see log_limit.c): a hostile or
 * broken peer must not fill a disk through our log. */
#ifndef PSEUD_LOG_LIMIT_H
#define PSEUD_LOG_LIMIT_H

#include "module.h"

/* The kinds of network-triggered lines, each limited on its own. */
typedef enum {
    LOG_MALFORMED = 0,      /* a malformed message dropped (wire.c's verdict) */
    LOG_BAD_WORK,           /* a WORK body refused */
    LOG_UNKNOWN_TYPE,       /* a message of an unknown type refused */
    LOG_IGNORED,            /* debug: a message nobody takes */
    LOG_STRAY_REPLY,        /* a reply from another peer than the call's */
    LOG_REPLY_DROPPED,      /* a reply that could not be sent or kept */
    LOG_QUEUED_DROPPED,     /* a queued message whose send failed */
    LOG_HANDLER_ERROR,      /* a plugin or handler raised on a message */
    LOG_ZAP,                /* a ZAP request refused as malformed, or not answered */
    LOG_KINDS
} log_kind;

/* pseud_log at the kind's level, unless LOG_BURST lines of that kind were
 * written within the last second: then only counted, and one line a
 * second at most says how many were suppressed. A suppressed line costs a
 * coarse clock read and a counter. Never raises. */
void pseud_log_limited(pseud_state *st, log_kind kind, const char *fmt, ...);

/* Module life: set up in exec, GC support, freed in m_free. */
int log_limit_init(PyObject *module, pseud_state *st);
int log_limit_traverse(pseud_state *st, visitproc visit, void *arg);
void log_limit_clear(pseud_state *st);
void log_limit_free(pseud_state *st);

#endif
