/* pseud._pseud: module init (multi-phase, module state), exceptions, the
 * shared libzmq context and the logger. */
#include "module.h"
#include "broker.h"
#include "codec.h"
#include "errors.h"
#include "log_limit.h"
#include "registry.h"
#include "future.h"
#include "proxy.h"
#include "rpc.h"
#include "remote_error.h"
#include "socket.h"
#include "syncclient.h"
#include "zap.h"

#include <stdarg.h>
#include <zmq.h>

#define LOGGING_DEBUG 10    /* logging.DEBUG: a value the logging module fixes */

pseud_state *
pseud_state_from_type(PyTypeObject *tp)
{
    PyObject *module = PyType_GetModuleByDef(tp, &pseud_module_def);
    if (module == NULL)
        return NULL;
    return (pseud_state *)PyModule_GetState(module);
}

void
pseud_log(pseud_state *st, const char *level, const char *fmt, ...)
{
    va_list vargs;
    va_start(vargs, fmt);
    pseud_logv(st, level, fmt, vargs);
    va_end(vargs);
}

void
pseud_logv(pseud_state *st, const char *level, const char *fmt, va_list vargs)
{
    PyObject *saved = errors_save();
    if (level[0] == 'd' && st->logger != NULL) {
        /* a flood of ignorable messages must not cost a formatted line each */
        PyObject *on = PyObject_CallMethod(st->logger, "isEnabledFor", "i", LOGGING_DEBUG);
        int enabled = on != NULL && PyObject_IsTrue(on) == 1;
        Py_XDECREF(on);
        if (!enabled) {
            errors_restore(saved);
            return;
        }
    }
    PyObject *msg = PyUnicode_FromFormatV(fmt, vargs);
    if (msg != NULL && st->logger != NULL) {
        PyObject *res = PyObject_CallMethod(st->logger, level, "O", msg);
        Py_XDECREF(res);
    }
    Py_XDECREF(msg);
    errors_restore(saved);
}

static int
add_exception_based(PyObject *module, PyObject **slot, const char *qualname,
                    const char *name, PyObject *base)
{
    *slot = PyErr_NewException(qualname, base, NULL);
    if (*slot == NULL)
        return -1;
    return PyModule_AddObjectRef(module, name, *slot);
}

static int
add_exception(PyObject *module, PyObject **slot, const char *qualname, const char *name)
{
    return add_exception_based(module, slot, qualname, name, NULL);
}

static int
pseud_exec(PyObject *module)
{
    pseud_state *st = PyModule_GetState(module);

    if (add_exception(module, &st->ServiceNotFoundError,
                      "pseud.interfaces.ServiceNotFoundError", "ServiceNotFoundError") < 0
        || add_exception(module, &st->TimeoutError,
                         "pseud.interfaces.TimeoutError", "TimeoutError") < 0
        || add_exception(module, &st->UnauthorizedError,
                         "pseud.interfaces.UnauthorizedError", "UnauthorizedError") < 0
        || add_exception_based(module, &st->PeerGoneError, "pseud.interfaces.PeerGoneError",
                               "PeerGoneError", PyExc_ConnectionError) < 0
        || add_exception_based(module, &st->MessageTooLargeError,
                               "pseud.interfaces.MessageTooLargeError", "MessageTooLargeError",
                               PyExc_ValueError) < 0)
        return -1;

    PyObject *logging = PyImport_ImportModule("logging");
    if (logging == NULL)
        return -1;
    st->logger = PyObject_CallMethod(logging, "getLogger", "s", "pseud");
    Py_DECREF(logging);
    if (st->logger == NULL)
        return -1;

    st->zmq_ctx = zmq_ctx_new();
    if (st->zmq_ctx == NULL) {
        PyErr_SetString(PyExc_OSError, "pseud: zmq_ctx_new failed");
        return -1;
    }

    if (log_limit_init(module, st) < 0)
        return -1;

    if (future_init_module(module, st) < 0
        || codec_init_module(module, st) < 0
        || registry_init_module(module, st) < 0
        || proxy_init_module(module, st) < 0
        || rpc_init_module(module, st) < 0
        || remote_error_init_module(module) < 0
        || syncclient_init_module(module, st) < 0
        || errors_init_module(module, st) < 0
        || context_init_module(module, st) < 0
        || socket_init_module(module, st) < 0
        || frame_init_module(module, st) < 0
        || sockopt_init_module(module) < 0
        || zap_init_module(module) < 0
        || broker_init_module(module) < 0)
        return -1;

    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    PyObject *version = Py_BuildValue("(iii)", major, minor, patch);
    if (version == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "zmq_version", version);
    Py_DECREF(version);
    return rc;
}

static int
pseud_traverse(PyObject *module, visitproc visit, void *arg)
{
    pseud_state *st = PyModule_GetState(module);
    if (st == NULL)
        return 0;
    Py_VISIT(st->Future_Type);
    Py_VISIT(st->PendingCall_Type);
    Py_VISIT(st->Registry_Type);
    Py_VISIT(st->RPCCallable_Type);
    Py_VISIT(st->Packer_Type);
    Py_VISIT(st->Proxy_Type);
    Py_VISIT(st->RPC_Type);
    Py_VISIT(st->Context_Type);
    Py_VISIT(st->Socket_Type);
    Py_VISIT(st->Frame_Type);
    Py_VISIT(st->ServiceNotFoundError);
    Py_VISIT(st->TimeoutError);
    Py_VISIT(st->UnauthorizedError);
    Py_VISIT(st->PeerGoneError);
    Py_VISIT(st->MessageTooLargeError);
    Py_VISIT(st->ZMQError);
    Py_VISIT(st->Again);
    Py_VISIT(st->context);
    Py_VISIT(st->default_context);
    Py_VISIT(st->ExtType);
    Py_VISIT(st->global_registry);
    Py_VISIT(st->default_packer);
    Py_VISIT(st->predicates);
    Py_VISIT(st->logger);
    Py_VISIT(st->msgpack_ExtraData);
    Py_VISIT(st->zap_domains);
    Py_VISIT(st->zap_socket);
    Py_VISIT(st->gevent_get_hub);
    Py_VISIT(st->gevent_Waiter);
    Py_VISIT(st->gevent_Timeout);
    Py_VISIT(st->CallTimeout);
    Py_VISIT(st->gevent_spawn);
    Py_VISIT(st->gevent_getcurrent);
    return log_limit_traverse(st, visit, arg);
}

static int
pseud_clear(PyObject *module)
{
    pseud_state *st = PyModule_GetState(module);
    if (st == NULL)
        return 0;
    Py_CLEAR(st->Future_Type);
    Py_CLEAR(st->PendingCall_Type);
    Py_CLEAR(st->Registry_Type);
    Py_CLEAR(st->RPCCallable_Type);
    Py_CLEAR(st->Packer_Type);
    Py_CLEAR(st->Proxy_Type);
    Py_CLEAR(st->RPC_Type);
    Py_CLEAR(st->Context_Type);
    Py_CLEAR(st->Socket_Type);
    Py_CLEAR(st->Frame_Type);
    Py_CLEAR(st->ServiceNotFoundError);
    Py_CLEAR(st->TimeoutError);
    Py_CLEAR(st->UnauthorizedError);
    Py_CLEAR(st->PeerGoneError);
    Py_CLEAR(st->MessageTooLargeError);
    Py_CLEAR(st->ZMQError);
    Py_CLEAR(st->Again);
    Py_CLEAR(st->context);
    /* never terminated here: pyzmq's, with sockets of pyzmq's own in it */
    Py_CLEAR(st->default_context);
    Py_CLEAR(st->ExtType);
    Py_CLEAR(st->global_registry);
    Py_CLEAR(st->default_packer);
    Py_CLEAR(st->predicates);
    Py_CLEAR(st->logger);
    Py_CLEAR(st->msgpack_ExtraData);
    Py_CLEAR(st->zap_domains);
    Py_CLEAR(st->zap_socket);
    Py_CLEAR(st->gevent_get_hub);
    Py_CLEAR(st->gevent_Waiter);
    Py_CLEAR(st->gevent_Timeout);
    Py_CLEAR(st->CallTimeout);
    Py_CLEAR(st->gevent_spawn);
    Py_CLEAR(st->gevent_getcurrent);
    log_limit_clear(st);
    return 0;
}

static void
pseud_free(void *module)
{
    pseud_state *st = PyModule_GetState((PyObject *)module);
    pseud_clear((PyObject *)module);
    if (st != NULL)
        log_limit_free(st);
    if (st != NULL && st->zmq_ctx != NULL) {
        /* every RPC holds the module, so no socket is open by now and
         * zmq_ctx_term cannot block; shutdown first all the same. Only
         * pseud's own: a pyzmq context peers lived in (default_context,
         * context=) is pyzmq's to terminate */
        zmq_ctx_shutdown(st->zmq_ctx);
        zmq_ctx_term(st->zmq_ctx);
        st->zmq_ctx = NULL;
    }
}

static PyModuleDef_Slot pseud_slots[] = {
    {Py_mod_exec, pseud_exec},
    {0, NULL},
};

PyModuleDef pseud_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pseud._pseud",
    .m_doc = "Native core of pseud: ZeroMQ RPC with msgpack, cooperative with gevent.",
    .m_size = sizeof(pseud_state),
    .m_slots = pseud_slots,
    .m_traverse = pseud_traverse,
    .m_clear = pseud_clear,
    .m_free = pseud_free,
};

PyMODINIT_FUNC
PyInit__pseud(void)
{
    return PyModuleDef_Init(&pseud_module_def);
}
