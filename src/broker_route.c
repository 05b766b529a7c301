/* The broker's hot path (docs/guide/scaling.rst): routing messages between
 * the frontend and the backend, the call table (slot + generation call ids),
 * choosing the worker with the fewest calls in flight, the wait queue and
 * its deadlines, and worker liveness (joins, probes, losses). Runs only in
 * the hub callbacks broker_on_ready, broker_on_monitor and broker_on_tick;
 * every helper here
 * is static so that nothing per message crosses a file. The type and the
 * sockets' setup are in broker.c. */
#include "broker.h"
#include "broker_object.h"
#include "errors.h"
#include "green.h"
#include "wire.h"

#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#define BATCH 256               /* messages per socket per wake-up before yielding */
#define SWEEP_TICKS 10          /* a liveness sweep every second */
#define SWEEP_BURST 10          /* ticks of sweeps after a DISCONNECTED event */
#define CALL_ID_LEN 8

/* message types as case labels (wire.h has them as strings) */
enum { T_OK = 0x01, T_HELLO = 0x02, T_WORK = 0x03, T_AUTHENTICATED = 0x04,
       T_HEARTBEAT = 0x06, T_ERROR = 0x10, T_UNAUTHORIZED = 0x11 };

/* ------------------------------------------------------------ helpers */

static bcall *
slot(BrokerObject *b, uint32_t i)
{
    return &b->chunks[i / CHUNK][i % CHUNK];
}

static uint32_t
call_alloc(BrokerObject *b)
{
    if (b->free_head == NIL) {
        if (b->nslots / CHUNK >= MAX_CHUNKS)
            return NIL;
        bcall *chunk = PyMem_Calloc(CHUNK, sizeof(bcall));
        if (chunk == NULL)
            return NIL;
        b->chunks[b->nslots / CHUNK] = chunk;
        for (uint32_t k = 0; k < CHUNK; k++) {
            chunk[k].next = k + 1 < CHUNK ? b->nslots + k + 1 : b->free_head;
            zmq_msg_init(&chunk[k].peer);
            zmq_msg_init(&chunk[k].uuid);
            zmq_msg_init(&chunk[k].body);
            zmq_msg_init(&chunk[k].aux);
        }
        b->free_head = b->nslots;
        b->nslots += CHUNK;
    }
    uint32_t i = b->free_head;
    bcall *c = slot(b, i);
    b->free_head = c->next;
    c->next = NIL;
    c->gen++;
    c->worker = -1;
    return i;
}

static void
reset_msg(zmq_msg_t *m)
{
    zmq_msg_close(m);
    zmq_msg_init(m);
}

static void
call_free(BrokerObject *b, uint32_t i)
{
    bcall *c = slot(b, i);
    if (c->state == CALL_AT_WORKER) {
        b->in_flight--;
        if (c->worker >= 0 && c->worker < b->nworkers && b->workers[c->worker].rid != NULL)
            b->workers[c->worker].inflight--;
    }
    c->state = CALL_FREE;
    c->worker = -1;
    reset_msg(&c->peer);
    reset_msg(&c->uuid);
    reset_msg(&c->body);
    reset_msg(&c->aux);
    c->next = b->free_head;
    b->free_head = i;
}

static void
call_id(const BrokerObject *b, uint32_t i, unsigned char out[CALL_ID_LEN])
{
    uint32_t gen = b->chunks[i / CHUNK][i % CHUNK].gen;
    memcpy(out, &i, 4);
    memcpy(out + 4, &gen, 4);
}

/* The live call `id` names in `state`, or NIL. */
static uint32_t
call_find(BrokerObject *b, const char *id, size_t len, int state)
{
    if (len != CALL_ID_LEN)
        return NIL;
    uint32_t i, gen;
    memcpy(&i, id, 4);
    memcpy(&gen, id + 4, 4);
    if (i >= b->nslots)
        return NIL;
    bcall *c = slot(b, i);
    return c->gen == gen && c->state == state ? i : NIL;
}

static int
msg_set(zmq_msg_t *m, const void *data, size_t len)
{
    zmq_msg_close(m);
    if (zmq_msg_init_size(m, len) != 0) {
        zmq_msg_init(m);
        return -1;
    }
    if (len)
        memcpy(zmq_msg_data(m), data, len);
    return 0;
}

static int
msg_eq(zmq_msg_t *m, const void *data, size_t len)
{
    return zmq_msg_size(m) == len && memcmp(zmq_msg_data(m), data, len) == 0;
}

/* One frame to send: a message moved (msg), or bytes copied. */
typedef struct {
    zmq_msg_t *msg;
    const void *data;
    size_t len;
} part;

/* Send a whole message without blocking. A ROUTER refuses (EHOSTUNREACH,
 * EAGAIN) at the first frame or never, so on failure nothing was sent and
 * every moved message is still ours. 0, or -1 with errno. */
static int
send_parts(void *sock, part *p, int n)
{
    for (int k = 0; k < n; k++) {
        int flags = ZMQ_DONTWAIT | (k + 1 < n ? ZMQ_SNDMORE : 0);
        int rc = p[k].msg != NULL ? zmq_msg_send(p[k].msg, sock, flags)
                                  : zmq_send(sock, p[k].data, p[k].len, flags);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ERROR(cls, message, '') to `peer` on `sock` for message id `uuid`. */
static void
send_error(void *sock, const void *peer, size_t peer_len, const void *uuid, size_t uuid_len,
           const char *cls, const char *message)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t lc = strlen(cls), lm = strlen(message);
    if (msgpack_pack_array(&pk, 3) == 0
        && msgpack_pack_str_with_body(&pk, cls, lc) == 0
        && msgpack_pack_str_with_body(&pk, message, lm) == 0
        && msgpack_pack_str_with_body(&pk, "", 0) == 0) {
        part p[] = {{NULL, peer, peer_len}, {NULL, "", 0},
                    {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN}, {NULL, uuid, uuid_len},
                    {NULL, PSEUD_ERROR, 1}, {NULL, sb.data, sb.size}};
        (void)send_parts(sock, p, 6);   /* a caller gone is no one to tell */
    }
    msgpack_sbuffer_destroy(&sb);
}

static void
call_error(BrokerObject *b, uint32_t i, const char *cls, const char *message)
{
    bcall *c = slot(b, i);
    void *sock = c->state == CALL_TO_CLIENT ? b->back : b->front;
    send_error(sock, zmq_msg_data(&c->peer), zmq_msg_size(&c->peer),
               zmq_msg_data(&c->uuid), zmq_msg_size(&c->uuid), cls, message);
}

/* Logs for hostile or broken input: at most one line a second, all counted. */
static void
log_drop(BrokerObject *b, const char *where, const char *problem)
{
    double now = green_now();
    if (now - b->last_log < 1.0)
        return;
    b->last_log = now;
    PyObject *saved = errors_save();
    pseud_log(b->st, "warning", "pseud broker %R: dropped a message at the %s: %s "
              "(further drops this second are only counted)", b->service_id, where, problem);
    errors_restore(saved);
}

/* ------------------------------------------------------------ workers */

static int
worker_find(BrokerObject *b, const char *rid, size_t len)
{
    for (int w = 0; w < b->nworkers; w++)
        if (b->workers[w].rid != NULL && b->workers[w].rid_len == len
            && memcmp(b->workers[w].rid, rid, len) == 0)
            return w;
    return -1;
}

static int
worker_join(BrokerObject *b, const char *rid, size_t len)
{
    int w = worker_find(b, rid, len);
    if (w >= 0)
        return w;
    for (w = 0; w < b->nworkers && b->workers[w].rid != NULL; w++)
        ;
    if (w == b->nworkers) {
        bworker *more = PyMem_Realloc(b->workers, (b->nworkers + 1) * sizeof(bworker));
        if (more == NULL)
            return -1;
        b->workers = more;
        b->nworkers++;
    }
    char *copy = PyMem_Malloc(len ? len : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, rid, len);
    b->workers[w] = (bworker){copy, len, 0, 0};
    b->joined++;
    return w;
}

/* The worker at slot w is gone: its calls get an ERROR, its own calls to
 * clients are forgotten (their replies have nowhere to go). */
static void
worker_lost(BrokerObject *b, int w)
{
    bworker *wk = &b->workers[w];
    for (uint32_t i = 0; i < b->nslots; i++) {
        bcall *c = slot(b, i);
        if (c->state == CALL_AT_WORKER && c->worker == w) {
            call_error(b, i, "ConnectionAbortedError",
                       "pseud broker: the worker running this call went away; "
                       "the call may or may not have run");
            b->lost++;
            call_free(b, i);
        }
        else if (c->state == CALL_TO_CLIENT && msg_eq(&c->peer, wk->rid, wk->rid_len)) {
            call_free(b, i);
        }
    }
    PyMem_Free(wk->rid);
    wk->rid = NULL;
    wk->inflight = 0;
}

/* The live worker with the fewest calls in flight, below the limit; ties
 * go round the table. -1 when all are busy or there are none. */
static int
worker_pick(BrokerObject *b)
{
    int best = -1;
    for (int k = 0; k < b->nworkers; k++) {
        int w = (b->rr + k) % b->nworkers;
        bworker *wk = &b->workers[w];
        if (wk->rid == NULL || wk->inflight >= b->max_in_flight)
            continue;
        if (best < 0 || wk->inflight < b->workers[best].inflight)
            best = w;
        if (wk->inflight == 0)
            break;
    }
    if (best >= 0)
        b->rr = (best + 1) % b->nworkers;
    return best;
}

/* Does the worker still have a connection? A HEARTBEAT is the probe: the
 * backend ROUTER refuses it with EHOSTUNREACH once the peer is gone. */
static void
sweep(BrokerObject *b)
{
    for (int w = 0; w < b->nworkers; w++) {
        bworker *wk = &b->workers[w];
        if (wk->rid == NULL)
            continue;
        part p[] = {{NULL, wk->rid, wk->rid_len}, {NULL, "", 0},
                    {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN}, {NULL, "", 0},
                    {NULL, PSEUD_HEARTBEAT, 1}, {NULL, "", 0}};
        if (send_parts(b->back, p, 6) < 0 && zmq_errno() == EHOSTUNREACH)
            worker_lost(b, w);
    }
}

/* ------------------------------------------------------------ routing */

/* Send queued call i to worker w. 0 sent, 1 not now (pipe full), -1 the
 * worker is gone. The call is unchanged unless it was sent. */
static int
dispatch(BrokerObject *b, uint32_t i, int w)
{
    bcall *c = slot(b, i);
    bworker *wk = &b->workers[w];
    unsigned char id[CALL_ID_LEN];
    call_id(b, i, id);
    part p[] = {{NULL, wk->rid, wk->rid_len}, {NULL, "", 0},
                {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN}, {NULL, id, CALL_ID_LEN},
                {NULL, PSEUD_WORK, 1}, {&c->body, NULL, 0}, {&c->aux, NULL, 0}};
    if (send_parts(b->back, p, 7) < 0)
        return zmq_errno() == EHOSTUNREACH ? -1 : 1;
    reset_msg(&c->aux);
    c->state = CALL_AT_WORKER;
    c->worker = w;
    wk->inflight++;
    wk->served++;
    b->in_flight++;
    b->routed++;
    return 0;
}

/* Hand queued calls to free workers, oldest first; expired ones get ERROR. */
static void
pump(BrokerObject *b)
{
    double now = green_now();
    while (b->q_head != NIL) {
        uint32_t i = b->q_head;
        bcall *c = slot(b, i);
        if (c->deadline <= now) {
            b->q_head = c->next;
            if (b->q_head == NIL)
                b->q_tail = NIL;
            b->q_len--;
            call_error(b, i, "TimeoutError",
                       "pseud broker: no worker was free before the call's deadline");
            b->expired++;
            call_free(b, i);
            continue;
        }
        int w = worker_pick(b);
        if (w < 0)
            return;
        int rc = dispatch(b, i, w);
        if (rc == 1)
            return;
        if (rc < 0) {
            worker_lost(b, w);
            continue;
        }
        b->q_head = c->next;
        if (b->q_head == NIL)
            b->q_tail = NIL;
        c->next = NIL;
        b->q_len--;
    }
}

static void
remember_user(BrokerObject *b, const char *user, const void *rid, size_t rid_len)
{
    PyObject *key = PyBytes_FromString(user);
    PyObject *old = key ? PyDict_GetItemWithError(b->users, key) : NULL;
    if (key != NULL && !PyErr_Occurred()
        && (old == NULL || PyBytes_GET_SIZE(old) != (Py_ssize_t)rid_len
            || memcmp(PyBytes_AS_STRING(old), rid, rid_len) != 0)) {
        PyObject *val = PyBytes_FromStringAndSize(rid, rid_len);
        if (val == NULL || PyDict_SetItem(b->users, key, val) < 0)
            PyErr_Clear();
        Py_XDECREF(val);
    }
    PyErr_Clear();
    Py_XDECREF(key);
}

static void
front_work(BrokerObject *b, wire_message *m)
{
    const char *user = m->user_id != NULL ? m->user_id : "";
    if (b->secured)
        remember_user(b, user, m->routing, m->routing_len);
    if (b->q_len >= b->max_queue)
        pump(b);
    if (b->q_len >= b->max_queue && worker_pick(b) < 0) {
        char text[160];
        snprintf(text, sizeof(text), "pseud broker: %zd calls already wait for a free "
                 "worker (max_queue); try again later", b->q_len);
        send_error(b->front, m->routing, m->routing_len, m->uuid, m->uuid_len,
                   "RuntimeError", text);
        b->rejected++;
        return;
    }
    uint32_t i = call_alloc(b);
    if (i == NIL) {
        send_error(b->front, m->routing, m->routing_len, m->uuid, m->uuid_len,
                   "MemoryError", "pseud broker: out of call slots");
        b->rejected++;
        return;
    }
    bcall *c = slot(b, i);
    if (msg_set(&c->aux, user, strlen(user)) < 0) {
        c->state = CALL_QUEUED;
        call_free(b, i);
        return;
    }
    zmq_msg_move(&c->peer, &m->frames[0]);
    zmq_msg_move(&c->uuid, &m->frames[3]);
    zmq_msg_move(&c->body, &m->frames[5]);
    c->state = CALL_QUEUED;
    c->deadline = green_now() + b->timeout;
    if (b->q_tail != NIL)
        slot(b, b->q_tail)->next = i;
    else
        b->q_head = i;
    b->q_tail = i;
    b->q_len++;
    pump(b);
}

/* A client answers a worker's call (send_to through the broker). */
static void
front_reply(BrokerObject *b, wire_message *m)
{
    uint32_t i = call_find(b, m->uuid, m->uuid_len, CALL_TO_CLIENT);
    if (i == NIL || !msg_eq(&slot(b, i)->aux, m->routing, m->routing_len)) {
        b->bad_front++;
        log_drop(b, "frontend", "a reply to no call of ours");
        return;
    }
    bcall *c = slot(b, i);
    part p[] = {{&c->peer, NULL, 0}, {NULL, "", 0}, {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN},
                {&c->uuid, NULL, 0}, {NULL, &m->type, 1}, {&m->frames[5], NULL, 0}};
    (void)send_parts(b->back, p, 6);
    call_free(b, i);
}

static void
front_message(BrokerObject *b, wire_message *m)
{
    if (b->secured && (m->user_id == NULL || m->user_id[0] == '\0')) {
        /* fail closed, as secured servers do: no handshake named this peer */
        b->anonymous++;
        return;
    }
    switch ((unsigned char)m->type) {
    case T_WORK:
        front_work(b, m);
        break;
    case T_OK:
    case T_ERROR:
        front_reply(b, m);
        break;
    case T_HEARTBEAT:
        break;
    case T_HELLO:
    case T_AUTHENTICATED:
    case T_UNAUTHORIZED:
        b->bad_front++;
        log_drop(b, "frontend", "login messages are not brokered (use PLAIN or CURVE with ZAP)");
        break;
    default:
        b->bad_front++;
        send_error(b->front, m->routing, m->routing_len, m->uuid, m->uuid_len,
                   "ValueError", "pseud: unknown message type");
    }
}

/* A worker answers a call. */
static void
back_reply(BrokerObject *b, wire_message *m)
{
    uint32_t i = call_find(b, m->uuid, m->uuid_len, CALL_AT_WORKER);
    bcall *c = i != NIL ? slot(b, i) : NULL;
    if (c == NULL || c->worker < 0
        || !(b->workers[c->worker].rid_len == m->routing_len
             && memcmp(b->workers[c->worker].rid, m->routing, m->routing_len) == 0)) {
        b->bad_back++;
        log_drop(b, "backend", "a reply to no call of that worker");
        return;
    }
    part p[] = {{&c->peer, NULL, 0}, {NULL, "", 0}, {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN},
                {&c->uuid, NULL, 0}, {NULL, &m->type, 1}, {&m->frames[5], NULL, 0}};
    if (send_parts(b->front, p, 6) == 0)
        b->replied++;
    call_free(b, i);
    pump(b);
}

/* A worker calls a client: its message id is 16 bytes then the user id. */
static void
back_work(BrokerObject *b, wire_message *m)
{
    if (m->uuid_len <= BROKER_WORKER_CALL_ID) {
        b->bad_back++;
        send_error(b->back, m->routing, m->routing_len, m->uuid, m->uuid_len, "ValueError",
                   "pseud broker: a worker's call must name its user id after 16 bytes of id");
        return;
    }
    const char *target = m->uuid + BROKER_WORKER_CALL_ID;
    size_t target_len = m->uuid_len - BROKER_WORKER_CALL_ID;
    PyObject *rid = NULL;
    if (b->secured) {
        PyObject *key = PyBytes_FromStringAndSize(target, target_len);
        rid = key ? PyDict_GetItemWithError(b->users, key) : NULL;
        Py_XINCREF(rid);
        Py_XDECREF(key);
        PyErr_Clear();
    }
    const char *crid = rid ? PyBytes_AS_STRING(rid) : target;
    size_t crid_len = rid ? (size_t)PyBytes_GET_SIZE(rid) : target_len;
    uint32_t i = call_alloc(b);
    bcall *c = i != NIL ? slot(b, i) : NULL;
    if (c == NULL || msg_set(&c->aux, crid, crid_len) < 0) {
        if (c != NULL) {
            c->state = CALL_TO_CLIENT;
            call_free(b, i);
        }
        Py_XDECREF(rid);
        send_error(b->back, m->routing, m->routing_len, m->uuid, m->uuid_len,
                   "MemoryError", "pseud broker: out of call slots");
        return;
    }
    Py_XDECREF(rid);
    unsigned char id[CALL_ID_LEN];
    call_id(b, i, id);
    part p[] = {{&c->aux, NULL, 0}, {NULL, "", 0}, {NULL, PSEUD_VERSION, PSEUD_VERSION_LEN},
                {NULL, id, CALL_ID_LEN}, {NULL, PSEUD_WORK, 1}, {&m->frames[5], NULL, 0}};
    /* the routing id is sent as a copy: the call keeps it to check the reply */
    zmq_msg_t rid_copy;
    zmq_msg_init(&rid_copy);
    zmq_msg_copy(&rid_copy, &c->aux);
    p[0].msg = &rid_copy;
    int rc = send_parts(b->front, p, 6);
    zmq_msg_close(&rid_copy);
    if (rc < 0) {
        c->state = CALL_TO_CLIENT;
        call_free(b, i);
        send_error(b->back, m->routing, m->routing_len, m->uuid, m->uuid_len,
                   "ConnectionRefusedError",
                   "pseud broker: no client with that user id is connected to the broker");
        return;
    }
    zmq_msg_move(&c->peer, &m->frames[0]);
    zmq_msg_move(&c->uuid, &m->frames[3]);
    c->state = CALL_TO_CLIENT;
    c->deadline = green_now() + b->timeout;
    b->to_clients++;
}

static void
back_message(BrokerObject *b, wire_message *m)
{
    /* workers join by their connection's probe only: a message from a
     * peer that never announced itself (or was found gone) is dropped */
    if (worker_find(b, m->routing, m->routing_len) < 0) {
        b->bad_back++;
        log_drop(b, "backend", "a message from no worker (workers announce themselves "
                 "with ZMQ_PROBE_ROUTER: Server.connect_broker)");
        return;
    }
    switch ((unsigned char)m->type) {
    case T_OK:
    case T_ERROR:
        back_reply(b, m);
        break;
    case T_WORK:
        back_work(b, m);
        break;
    case T_HEARTBEAT:
        break;
    default:
        b->bad_back++;
        log_drop(b, "backend", "unexpected message type from a worker");
    }
}

/* Drain up to BATCH messages from one socket. Returns how many; *settled
 * is set when the drain ended with a recv that found nothing (EAGAIN). */
static int
drain(BrokerObject *b, void *sock, int is_front, int *settled)
{
    wire_message m;
    int n = 0;
    *settled = 0;
    while (n < BATCH && !b->closed) {
        int rc = wire_recv(sock, &m);
        if (rc == WIRE_NOTHING) {
            *settled = 1;
            break;
        }
        if (rc == WIRE_FAILED) {
            wire_release(&m);
            break;
        }
        n++;
        if (rc == WIRE_MESSAGE) {
            if (is_front)
                front_message(b, &m);
            else
                back_message(b, &m);
        }
        else if (rc == WIRE_PROBE) {
            if (!is_front) {
                /* a worker (re)connected: ZMQ_PROBE_ROUTER's hello */
                if (worker_join(b, zmq_msg_data(&m.frames[0]), zmq_msg_size(&m.frames[0])) >= 0)
                    pump(b);
            }
        }
        else {
            if (is_front)
                b->bad_front++;
            else
                b->bad_back++;
            log_drop(b, is_front ? "frontend" : "backend", m.problem);
        }
        wire_release(&m);
    }
    return n;
}

/* Route until neither socket can hold anything we have not seen, the way
 * fdwatch.c's rule asks but with as few libzmq calls as it allows: each
 * one that finds nothing costs the broker a getpid() and a poll() inside
 * libzmq, and in a sequential exchange the broker makes one wake-up per
 * message: eleven such checks a wake-up before this, about three now
 * (90 -> 60 system calls per sequential call in the broker, strace).
 *
 * A socket is "unsettled" until a recv on it has found nothing after the
 * last libzmq call on it (that recv processes libzmq's commands, as a
 * ZMQ_EVENTS read would). Both are unsettled when the hub wakes us, not
 * knowing which fd fired; handling messages from one socket sends on the
 * other (replies go to the frontend, calls to the backend), so draining
 * one unsettles the other. Replies first: they free workers for the
 * calls behind them. A socket still unsettled after ROUNDS (a flood) is
 * re-checked by fdwatch_after_io, which queues us on the hub again
 * rather than starving the hub's other callbacks. */
#define ROUNDS 4

/* Drain one side; what it handled may have been sent to the other. */
static void
drain_side(BrokerObject *b, int is_front, int *unsettled, int *other_unsettled)
{
    int settled;
    int n = drain(b, is_front ? b->front : b->back, is_front, &settled);
    *unsettled = !settled;
    *other_unsettled |= n > 0;
}

static void
route(BrokerObject *b)
{
    int back_unsettled = 1, front_unsettled = 1;
    for (int round = 0; round < ROUNDS && (back_unsettled || front_unsettled); round++) {
        if (back_unsettled)
            drain_side(b, 0, &back_unsettled, &front_unsettled);
        if (b->closed)
            return;
        if (front_unsettled)
            drain_side(b, 1, &front_unsettled, &back_unsettled);
        if (b->closed)
            return;
    }
    if (back_unsettled)
        fdwatch_after_io(&b->wb, ZMQ_POLLIN);
    if (front_unsettled)
        fdwatch_after_io(&b->wf, ZMQ_POLLIN);
}

/* The callback of the frontend's and the backend's fd watches. */
PyObject *
broker_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    BrokerObject *b = B(op);
    fdwatch_woken(&b->wf);
    fdwatch_woken(&b->wb);
    if (!b->closed)
        route(b);
    Py_RETURN_NONE;
}

/* The callback of the monitor's fd watch: a worker's connection dropped
 * (ZMQ_EVENT_DISCONNECTED), so probe the workers now and for a while. */
PyObject *
broker_on_monitor(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    BrokerObject *b = B(op);
    fdwatch_woken(&b->wm);
    if (b->closed)
        Py_RETURN_NONE;
    int got = 0;
    zmq_msg_t f;
    zmq_msg_init(&f);
    while (zmq_msg_recv(&f, b->mon, ZMQ_DONTWAIT) >= 0)
        got = 1;
    zmq_msg_close(&f);
    if (got) {
        b->burst = SWEEP_BURST;
        sweep(b);               /* sends on the backend: re-check it */
        pump(b);
        fdwatch_after_io(&b->wb, ZMQ_POLLIN);
        fdwatch_after_io(&b->wf, ZMQ_POLLIN);
    }
    Py_RETURN_NONE;
}

/* The tick: expire what waited too long, check the workers now and then. */
PyObject *
broker_on_tick(PyObject *op, PyObject *unused)
{
    (void)unused;
    BrokerObject *b = B(op);
    if (b->closed)
        Py_RETURN_NONE;
    pump(b);
    if (++b->ticks >= SWEEP_TICKS || b->burst > 0) {
        if (b->burst > 0)
            b->burst--;
        if (b->ticks >= SWEEP_TICKS) {
            b->ticks = 0;
            double now = green_now();
            for (uint32_t i = 0; i < b->nslots; i++)
                if (slot(b, i)->state == CALL_TO_CLIENT && slot(b, i)->deadline <= now)
                    call_free(b, i);
        }
        sweep(b);
        pump(b);
    }
    broker_after_io(b);
    Py_RETURN_NONE;
}
