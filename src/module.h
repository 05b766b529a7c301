/* Shared declarations of the pseud._pseud extension: the module state that
 * every component reaches through its objects' types (PEP 489/573). */
#ifndef PSEUD_MODULE_H
#define PSEUD_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>

struct log_limits;              /* log_limit.c */

/* PyType_GetModuleByDef() is CPython 3.11+; 3.10 has everything needed
 * to do the same walk: the module a heap type was created with (ht_module,
 * 3.9+) of each class in the MRO, compared by definition. Returns a
 * borrowed reference, or NULL with TypeError set, as the real one. */
#if PY_VERSION_HEX < 0x030B0000
static inline PyObject *
PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = mro != NULL ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
            continue;
        PyObject *module = ((PyHeapTypeObject *)t)->ht_module;
        if (module != NULL && PyModule_GetDef(module) == def)
            return module;
    }
    PyErr_Format(PyExc_TypeError,
                 "PyType_GetModuleByDef: no superclass of '%s' has the given module",
                 type->tp_name);
    return NULL;
}
#endif

typedef struct {
    /* heap types, created in module exec */
    PyTypeObject *Future_Type;
    PyTypeObject *PendingCall_Type; /* rpc_calls.c: the Future of a call we sent */
    PyTypeObject *Registry_Type;
    PyTypeObject *RPCCallable_Type;
    PyTypeObject *Packer_Type;
    PyTypeObject *Proxy_Type;
    PyTypeObject *RPC_Type;
    PyTypeObject *Context_Type;     /* context.c: pyzmq-like sockets for plugins */
    PyTypeObject *Socket_Type;      /* socket.c */
    PyTypeObject *Frame_Type;       /* frame.c */

    /* exceptions (pseud.interfaces re-exports them) */
    PyObject *ServiceNotFoundError;
    PyObject *TimeoutError;
    PyObject *UnauthorizedError;
    PyObject *PeerGoneError;        /* a ConnectionError: the peer's connection was lost */
    PyObject *MessageTooLargeError; /* a ValueError: over max_message_size, not sent */
    PyObject *ZMQError;         /* errors.c: ZMQError(errno, strerror), an OSError */
    PyObject *Again;            /* its subclass for EAGAIN */
    PyObject *context;          /* the process-wide Context object (wraps zmq_ctx) */

    PyObject *ExtType;          /* namedtuple('ExtType', 'code data') */
    PyObject *global_registry;  /* the process-wide Registry */
    PyObject *default_packer;   /* Packer() used when no translation_table */
    PyObject *predicates;       /* dict name -> predicate class */
    PyObject *logger;           /* logging.getLogger('pseud') */
    PyObject *msgpack_ExtraData;/* packer.c: msgpack.ExtraData, None without
                                   msgpack; NULL until first needed */

    /* gevent, bound lazily by green.c on first use */
    PyObject *gevent_get_hub;   /* gevent.get_hub */
    PyObject *gevent_Waiter;    /* gevent._waiter.Waiter */
    PyObject *gevent_Timeout;   /* gevent.Timeout */
    PyObject *CallTimeout;      /* (gevent.Timeout, TimeoutError): calls' timeouts */
    PyObject *gevent_spawn;     /* gevent.spawn_raw */
    PyObject *gevent_getcurrent;/* greenlet.getcurrent */

    /* pseud's own libzmq context: helper sockets, the ZAP handler, secured
     * peers, and every peer when pyzmq's is not shared (rpc_context.c) */
    void *zmq_ctx;
    int context_warned;         /* rpc_context.c said once why context= is not shared */
    /* where peers given no context= live, decided once (rpc_context.c):
     * NULL not yet, None pseud's own, else pyzmq's zmq.green.Context.instance() */
    PyObject *default_context;

    /* the ZAP handler (zap.c): libzmq allows one per context */
    PyObject *zap_domains;      /* dict domain bytes -> security backend */
    PyObject *zap_socket;       /* its REP Socket while a domain is registered */

    /* rate limits of the log lines peers cause (log_limit.c) */
    struct log_limits *log_limits;
} pseud_state;

extern PyModuleDef pseud_module_def;

/* State of the module that defined `tp` (or a base of it). Never NULL for
 * the extension's own types; sets an exception and returns NULL otherwise. */
pseud_state *pseud_state_from_type(PyTypeObject *tp);

static inline pseud_state *
pseud_state_of(PyObject *obj)
{
    return pseud_state_from_type(Py_TYPE(obj));
}

/* Log `msg % args` on the 'pseud' logger at `level` ("warning", "error",
 * "debug", "exception"). Never raises: a failure to log is swallowed, so
 * it is safe on the paths that handle hostile input. */
void pseud_log(pseud_state *st, const char *level, const char *fmt, ...);
void pseud_logv(pseud_state *st, const char *level, const char *fmt, va_list vargs);

/* Lines a peer can cause go through pseud_log_limited (log_limit.h). */

/* The libzmq context for the socket of a peer given no context= (an RPC,
 * a SyncClient, a Broker; docs/guide/calls.rst, "context= and inproc with
 * pyzmq"): pseud's own for a secured one, else the process's default
 * (rpc_context.c). *keep: a new reference to the pyzmq Context it
 * belongs to, to hold until the socket is closed, or NULL for pseud's own.
 * NULL with an exception on failure. */
void *pseud_default_context(pseud_state *st, int secured, PyObject **keep);

#endif
