/* ZAP handler of the built-in security plugins (docs/guide/security.rst).
 *
 * libzmq asks one handler per context, at inproc://zeromq.zap.01, to admit
 * or refuse each PLAIN/CURVE handshake. Upstream pseud could host one
 * secured server per process because of that; here one handler serves
 * every server of the process: each server sets its own ZAP domain and
 * registers its backend under it, and the handler decides by the
 * backend's `zap_policy`:
 *
 *   plain            PLAIN; admit when login == password; user id = login
 *   trusted_peer     PLAIN; admit any login; user id = login
 *   trusted_curve    CURVE; admit only keys listed in known_identities
 *                    (user id -> key pair or public key); user id = name
 *   untrusted_curve  CURVE; admit every key; user id = the login its key
 *                    was trusted as (trusted_keys), else the key in Z85,
 *                    which the backend then challenges with UNAUTHORIZED
 *
 * The handler is a greenlet reading a cooperative REP socket; it exists
 * while at least one domain is registered (an idle one would keep
 * gevent.wait() from returning). */
#include "zap.h"
#include "errors.h"
#include "green.h"
#include "socket.h"

#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_ERROR_PAUSE 0.1         /* seconds the handler rests after an error */

static PyObject *
reply(PyObject *request_id, const char *status, const char *text, PyObject *user_id)
{
    if (user_id == NULL)
        return Py_BuildValue("[yOyyyy]", "1.0", request_id, status, text, "", "");
    return Py_BuildValue("[yOyyOy]", "1.0", request_id, status, text, user_id, "");
}

/* The raw 32-byte public key of a known_identities value: a key pair
 * (public, secret), or a public key as 40 Z85 characters or 32 bytes. */
static int
public_key_of(PyObject *value, unsigned char out[32])
{
    if (PyTuple_Check(value) && PyTuple_GET_SIZE(value) >= 1)
        value = PyTuple_GET_ITEM(value, 0);
    const char *data;
    Py_ssize_t len;
    if (PyBytes_Check(value)) {
        data = PyBytes_AS_STRING(value);
        len = PyBytes_GET_SIZE(value);
    }
    else if (PyUnicode_Check(value)) {
        data = PyUnicode_AsUTF8AndSize(value, &len);
        if (data == NULL) {
            PyErr_Clear();
            return -1;
        }
    }
    else {
        return -1;
    }
    if (len == 32) {
        memcpy(out, data, 32);
        return 0;
    }
    if (len == 40 && memchr(data, '\0', 40) == NULL) {
        char z85[41];
        memcpy(z85, data, 40);
        z85[40] = '\0';
        return zmq_z85_decode(out, z85) != NULL ? 0 : -1;
    }
    return -1;
}

static PyObject *
z85_of(const unsigned char key[32])
{
    char z85[41];
    if (zmq_z85_encode(z85, key, 32) == NULL)
        return NULL;
    return PyBytes_FromStringAndSize(z85, 40);
}

static int
policy_is(PyObject *policy, const char *name)
{
    return PyUnicode_Check(policy) && PyUnicode_CompareWithASCIIString(policy, name) == 0;
}

/* Decide one ZAP request (a list of bytes frames); returns the reply frames. */
static PyObject *
zap_decide(pseud_state *st, PyObject *frames)
{
    Py_ssize_t n = PyList_Check(frames) ? PyList_GET_SIZE(frames) : 0;
    if (n < 6)
        return NULL;   /* not ZAP: no reply is possible on REP without an id */
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(frames, i)))
            return NULL;
    PyObject *request_id = PyList_GET_ITEM(frames, 1);
    PyObject *domain = PyList_GET_ITEM(frames, 2);
    const char *mechanism = PyBytes_AS_STRING(PyList_GET_ITEM(frames, 5));
    if (strcmp(PyBytes_AS_STRING(PyList_GET_ITEM(frames, 0)), "1.0") != 0)
        return reply(request_id, "400", "unsupported ZAP version", NULL);
    PyObject *backend = st->zap_domains ? PyDict_GetItemWithError(st->zap_domains, domain) : NULL;
    if (backend == NULL) {
        PyErr_Clear();
        return reply(request_id, "400", "no pseud server in this ZAP domain", NULL);
    }
    Py_INCREF(backend);
    PyObject *policy = PyObject_GetAttrString(backend, "zap_policy");
    PyObject *res = NULL;
    if (policy == NULL) {
        PyErr_Clear();
        res = reply(request_id, "500", "security plugin has no zap_policy", NULL);
    }
    else if (strcmp(mechanism, "PLAIN") == 0 && n >= 8
             && (policy_is(policy, "plain") || policy_is(policy, "trusted_peer"))) {
        PyObject *login = PyList_GET_ITEM(frames, 6);
        PyObject *password = PyList_GET_ITEM(frames, 7);
        int ok = policy_is(policy, "trusted_peer")
                 || (PyBytes_GET_SIZE(login) == PyBytes_GET_SIZE(password)
                     && memcmp(PyBytes_AS_STRING(login), PyBytes_AS_STRING(password),
                               PyBytes_GET_SIZE(login)) == 0);
        res = ok ? reply(request_id, "200", "OK", login)
                 : reply(request_id, "400", "wrong login or password", NULL);
    }
    else if (strcmp(mechanism, "CURVE") == 0 && n >= 7
             && PyBytes_GET_SIZE(PyList_GET_ITEM(frames, 6)) == 32
             && (policy_is(policy, "trusted_curve") || policy_is(policy, "untrusted_curve"))) {
        const unsigned char *key = (const unsigned char *)PyBytes_AS_STRING(PyList_GET_ITEM(frames, 6));
        const char *table = policy_is(policy, "trusted_curve") ? "known_identities" : "trusted_keys";
        PyObject *known = PyObject_GetAttrString(backend, table);
        PyObject *name = NULL;
        if (known != NULL && PyDict_Check(known)) {
            PyObject *k, *v;
            Py_ssize_t pos = 0;
            unsigned char candidate[32];
            /* known_identities maps name -> key; trusted_keys maps key -> name */
            while (name == NULL && PyDict_Next(known, &pos, &k, &v)) {
                PyObject *keyobj = table[0] == 'k' ? v : k;
                if (public_key_of(keyobj, candidate) == 0 && memcmp(candidate, key, 32) == 0)
                    name = table[0] == 'k' ? k : v;
            }
        }
        PyErr_Clear();
        if (name != NULL && PyUnicode_Check(name)) {
            PyObject *b = PyUnicode_AsUTF8String(name);
            res = b ? reply(request_id, "200", "OK", b) : NULL;
            Py_XDECREF(b);
        }
        else if (name != NULL && PyBytes_Check(name)) {
            res = reply(request_id, "200", "OK", name);
        }
        else if (policy_is(policy, "untrusted_curve")) {
            PyObject *z85 = z85_of(key);
            res = z85 ? reply(request_id, "200", "OK", z85) : NULL;
            Py_XDECREF(z85);
        }
        else {
            res = reply(request_id, "400", "unknown CURVE key", NULL);
        }
        Py_XDECREF(known);
    }
    else {
        res = reply(request_id, "400", "mechanism not allowed here", NULL);
    }
    if (res == NULL)
        PyErr_Clear();
    Py_XDECREF(policy);
    Py_DECREF(backend);
    return res;
}

/* Rest a little after an error, so that a persistent one never spins the
 * hub. -1 only when killed meanwhile. */
static int
zap_pause(pseud_state *st)
{
    if (green_sleep(st, ZAP_ERROR_PAUSE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
    }
    return 0;
}

/* The handler greenlet: answer requests until the socket is closed. */
static PyObject *
zap_loop(PyObject *module, PyObject *sock)
{
    pseud_state *st = PyModule_GetState(module);
    Py_INCREF(sock);
    for (;;) {
        PyObject *frames = socket_recv_list(sock);
        if (frames == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                Py_DECREF(sock);
                return NULL;     /* killed */
            }
            PyObject *exc = errors_save();
            int done = socket_is_closed(sock);
            if (!done)
                pseud_log(st, "warning", "pseud: ZAP handler receive failed: %R",
                          exc ? exc : Py_None);
            Py_XDECREF(exc);
            if (done)
                break;
            /* REP may still owe a reply (a failed send): give one, then
             * pause, so a persistent error never spins the hub */
            PyObject *owed = Py_BuildValue("[yyyyyy]", "1.0", "", "500", "internal error", "", "");
            if (owed != NULL)
                socket_send_list(sock, owed);
            Py_XDECREF(owed);
            PyErr_Clear();
            if (zap_pause(st) < 0) {
                Py_DECREF(sock);
                return NULL;
            }
            continue;
        }
        PyObject *answer = zap_decide(st, frames);
        Py_DECREF(frames);
        if (answer == NULL) {
            pseud_log(st, "warning", "pseud: malformed ZAP request ignored");
            /* REP must answer before it can read again: refuse */
            answer = Py_BuildValue("[yyyyyy]", "1.0", "", "400", "malformed request", "", "");
            if (answer == NULL) {
                PyErr_Clear();
                continue;
            }
        }
        int rc = socket_send_list(sock, answer);
        Py_DECREF(answer);
        if (rc < 0) {
            pseud_log(st, "warning", "pseud: ZAP reply failed");
            PyErr_Clear();
        }
    }
    Py_DECREF(sock);
    Py_RETURN_NONE;
}

static PyMethodDef zap_loop_def = {"_zap_loop", zap_loop, METH_O, NULL};

/* Close and release `sock` on a failure path, keeping the pending error. */
static void
close_keeping_error(PyObject *sock)
{
    socket_close(sock);     /* never raises */
    Py_DECREF(sock);
}

static int
zap_start(PyObject *module, pseud_state *st)
{
    PyObject *sock = socket_new(st, ZMQ_REP);
    if (sock == NULL)
        return -1;
    PyObject *endpoint = PyUnicode_FromString(ZAP_ENDPOINT);
    PyObject *r = endpoint ? socket_bind_endpoint(sock, endpoint) : NULL;
    Py_XDECREF(endpoint);
    if (r == NULL) {
        /* keep the bind error: another ZAP handler owns the endpoint */
        close_keeping_error(sock);
        return -1;
    }
    Py_DECREF(r);
    PyObject *loop = PyCFunction_NewEx(&zap_loop_def, module, NULL);
    PyObject *args = loop ? PyTuple_Pack(1, sock) : NULL;
    int rc = args ? green_spawn(st, loop, args) : -1;
    Py_XDECREF(args);
    Py_XDECREF(loop);
    if (rc < 0) {
        close_keeping_error(sock);
        return -1;
    }
    st->zap_socket = sock;
    return 0;
}

static PyObject *
zap_register_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "zap_register(domain: bytes, backend)");
        return NULL;
    }
    pseud_state *st = PyModule_GetState(module);
    if (st->zap_domains == NULL && (st->zap_domains = PyDict_New()) == NULL)
        return NULL;
    /* a domain serves one backend: sharing it would let one server's
     * stop() take the other's rule away */
    PyObject *held = PyDict_GetItemWithError(st->zap_domains, args[0]);
    if (held != NULL && held != args[1]) {
        PyErr_Format(PyExc_ValueError, "pseud: ZAP domain %R is already used by %R",
                     args[0], held);
        return NULL;
    }
    if (held == NULL && PyErr_Occurred())
        return NULL;
    if (PyDict_SetItem(st->zap_domains, args[0], args[1]) < 0)
        return NULL;
    if (st->zap_socket == NULL && zap_start(module, st) < 0) {
        PyObject *saved = errors_save();
        if (PyDict_DelItem(st->zap_domains, args[0]) < 0)
            PyErr_Clear();
        errors_restore(saved);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
zap_unregister_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "zap_unregister(domain, backend)");
        return NULL;
    }
    pseud_state *st = PyModule_GetState(module);
    PyObject *held = st->zap_domains ? PyDict_GetItemWithError(st->zap_domains, args[0]) : NULL;
    if (held == args[1] && PyDict_DelItem(st->zap_domains, args[0]) < 0)
        PyErr_Clear();
    PyErr_Clear();
    if (st->zap_socket != NULL && (st->zap_domains == NULL || PyDict_GET_SIZE(st->zap_domains) == 0)) {
        PyObject *sock = st->zap_socket;
        st->zap_socket = NULL;
        /* unbind first: an inproc endpoint is only released when the closed
         * socket is reaped, and the next secured server binds it again */
        PyObject *endpoint = PyUnicode_FromString(ZAP_ENDPOINT);
        if (endpoint == NULL || socket_unbind_endpoint(sock, endpoint) < 0)
            PyErr_Clear();
        Py_XDECREF(endpoint);
        socket_close(sock);
        Py_DECREF(sock);
    }
    Py_RETURN_NONE;
}

static PyMethodDef zap_functions[] = {
    {"zap_register", (PyCFunction)(void (*)(void))zap_register_py, METH_FASTCALL,
     "zap_register($module, domain, backend, /)\n--\n\nThe ZAP handler decides for `domain` by backend.zap_policy."},
    {"zap_unregister", (PyCFunction)(void (*)(void))zap_unregister_py, METH_FASTCALL,
     "zap_unregister($module, domain, backend, /)\n--\n\nForget the domain if that backend holds it."},
    {NULL},
};

int
zap_init_module(PyObject *module)
{
    return PyModule_AddFunctions(module, zap_functions);
}
