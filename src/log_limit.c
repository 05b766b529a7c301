/* Rate limits of the log lines peers cause: malformed messages, refused
 * bodies, dropped replies... (docs/protocol.rst, hostile input). A peer
 * sending 10,000 malformed messages a second would otherwise write 10,000
 * lines a second.
 *
 * Per kind, process-wide: the first LOG_BURST lines of a window of
 * LOG_WINDOW seconds are written; later ones are only counted. When the
 * window ends -- at the next line of that kind, or by a timer armed at the
 * first suppressed line, so that the count is never lost when the flood
 * stops -- one line says how many were suppressed; while the flood goes
 * on, that summary is the only line of each window. A window with nothing
 * suppressed lets the next one start with a burst again. */
#include "log_limit.h"
#include "errors.h"
#include "green.h"

#include <stdarg.h>

#define LOG_BURST 5         /* lines written per window before counting */
#define LOG_WINDOW 1.0      /* seconds */

typedef struct {
    double window_end;
    unsigned logged;            /* lines written in this window */
    unsigned long suppressed;   /* lines counted since the last summary */
    PyObject *timer;            /* the summary's timer while lines are counted */
} log_limit;

struct log_limits {
    log_limit kind[LOG_KINDS];
    PyObject *flush;            /* the timers' callback, bound to the module */
};

static const struct {
    const char *level;
    const char *about;          /* "suppressed N more lines about <about>" */
} kinds[LOG_KINDS] = {
    [LOG_MALFORMED] = {"warning", "malformed messages"},
    [LOG_BAD_WORK] = {"warning", "refused WORK bodies"},
    [LOG_UNKNOWN_TYPE] = {"warning", "unknown message types"},
    [LOG_IGNORED] = {"debug", "ignored messages"},
    [LOG_STRAY_REPLY] = {"warning", "replies from the wrong peer"},
    [LOG_REPLY_DROPPED] = {"warning", "dropped replies"},
    [LOG_QUEUED_DROPPED] = {"warning", "dropped queued messages"},
    [LOG_HANDLER_ERROR] = {"error", "errors while handling messages"},
    [LOG_ZAP] = {"warning", "ZAP requests"},
};

/* The window is over: say what was suppressed in it, start the next. */
static void
roll(pseud_state *st, log_kind k, double now)
{
    log_limit *l = &st->log_limits->kind[k];
    unsigned long n = l->suppressed;
    l->suppressed = 0;
    l->window_end = now + LOG_WINDOW;
    /* a flood that goes on gets its summary only, not a new burst */
    l->logged = n ? LOG_BURST : 0;
    if (n)
        pseud_log(st, kinds[k].level, "pseud: suppressed %lu more lines about %s",
                  n, kinds[k].about);
}

static PyObject *
flush(PyObject *module, PyObject *arg)
{
    pseud_state *st = PyModule_GetState(module);
    long k = PyLong_AsLong(arg);
    if (st == NULL || st->log_limits == NULL || k < 0 || k >= LOG_KINDS) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    log_limit *l = &st->log_limits->kind[k];
    green_watcher_close(l->timer);
    Py_CLEAR(l->timer);
    if (l->suppressed)
        roll(st, (log_kind)k, green_now_coarse());
    Py_RETURN_NONE;
}

static PyMethodDef flush_def = {"_log_flush", flush, METH_O, NULL};

/* A timer for the end of the window, so that the count is written even if
 * no line of that kind comes again. Without a hub (never on our network
 * paths) the count waits for the next line instead. */
static void
arm(pseud_state *st, log_kind k, double now)
{
    log_limit *l = &st->log_limits->kind[k];
    PyObject *saved = errors_save();
    PyObject *arg = PyLong_FromLong(k);
    if (arg != NULL)
        l->timer = green_background_timer(st, l->window_end - now, st->log_limits->flush, arg);
    Py_XDECREF(arg);
    PyErr_Clear();
    errors_restore(saved);
}

void
pseud_log_limited(pseud_state *st, log_kind kind, const char *fmt, ...)
{
    if (st->log_limits != NULL) {
        log_limit *l = &st->log_limits->kind[kind];
        double now = green_now_coarse();
        if (now >= l->window_end)
            roll(st, kind, now);
        if (l->logged >= LOG_BURST) {
            if (l->suppressed++ == 0 && l->timer == NULL)
                arm(st, kind, now);
            return;
        }
        l->logged++;
    }
    va_list va;
    va_start(va, fmt);
    pseud_logv(st, kinds[kind].level, fmt, va);
    va_end(va);
}

/* _log_limit_reset(): write every pending summary and start each kind's
 * budget afresh. The limits are the process's: a test suite calls this
 * between tests so that one test's log lines do not use up the next
 * one's second. */
static PyObject *
reset(PyObject *module, PyObject *unused)
{
    (void)unused;
    pseud_state *st = PyModule_GetState(module);
    if (st == NULL || st->log_limits == NULL)
        Py_RETURN_NONE;
    for (int k = 0; k < LOG_KINDS; k++) {
        log_limit *l = &st->log_limits->kind[k];
        green_watcher_close(l->timer);
        Py_CLEAR(l->timer);
        if (l->suppressed)
            roll(st, (log_kind)k, green_now_coarse());
        l->logged = 0;
        l->window_end = 0;
    }
    Py_RETURN_NONE;
}

static PyMethodDef log_limit_functions[] = {
    {"_log_limit_reset", reset, METH_NOARGS,
     "_log_limit_reset($module, /)\n--\n\nWrite pending summaries; every kind's budget "
     "starts afresh (for test suites)."},
    {NULL},
};

int
log_limit_init(PyObject *module, pseud_state *st)
{
    st->log_limits = PyMem_Calloc(1, sizeof(struct log_limits));
    if (st->log_limits == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    st->log_limits->flush = PyCFunction_NewEx(&flush_def, module, NULL);
    if (st->log_limits->flush == NULL)
        return -1;
    return PyModule_AddFunctions(module, log_limit_functions);
}

int
log_limit_traverse(pseud_state *st, visitproc visit, void *arg)
{
    if (st->log_limits == NULL)
        return 0;
    Py_VISIT(st->log_limits->flush);
    for (int k = 0; k < LOG_KINDS; k++)
        Py_VISIT(st->log_limits->kind[k].timer);
    return 0;
}

void
log_limit_clear(pseud_state *st)
{
    if (st->log_limits == NULL)
        return;
    Py_CLEAR(st->log_limits->flush);
    for (int k = 0; k < LOG_KINDS; k++)
        Py_CLEAR(st->log_limits->kind[k].timer);
}

void
log_limit_free(pseud_state *st)
{
    log_limit_clear(st);
    PyMem_Free(st->log_limits);
    st->log_limits = NULL;
}
