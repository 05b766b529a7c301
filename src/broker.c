/* The load-balancing broker (docs/guide/scaling.rst): owns its two ROUTER
 * sockets, the worker table, the call table and the wait queue.
 *
 * Clients connect to the frontend, whose routing id is the service id, as
 * to a Server of that id. Workers (Servers in worker mode) connect to the
 * backend, whose routing id is "pseud-broker:" + service id, and announce
 * themselves with ZMQ_PROBE_ROUTER's empty message on every (re)connect.
 *
 * Everything runs in hub callbacks (the sockets' fd watches and a tick
 * timer) and never blocks or switches: frames are moved from one socket to
 * the other with zmq_msg_send; only the frames routing needs are read (type,
 * message id, the ZAP User-Id); no Python code runs per message.
 *
 * A call gets a slot in the call table; its 8-byte id on the backend is the
 * slot and a generation, so a stale or forged reply never finds a live call.
 *   client WORK  -> queued, then sent to the live worker with the fewest
 *                   calls in flight (below max_in_flight) as
 *                   [worker, '', v1, call id, WORK, body, caller's user id]
 *   worker OK/ERROR for a call id -> to the caller with its own message id
 *   worker WORK whose id is 16 bytes + a user id (its send_to) -> to that
 *                   client under a call id; the client's reply goes back
 *   a worker gone (a send fails EHOSTUNREACH; checked on the backend
 *   monitor's DISCONNECTED events and every second) -> its calls get
 *   ERROR ConnectionAbortedError: they may have run, so never retried. */
#include "broker.h"
#include "convert.h"
#include "errors.h"
#include "fdwatch.h"
#include "green.h"
#include "socket.h"
#include "wire.h"

#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define BATCH 256               /* messages per socket per wake-up before yielding */
#define TICK 0.1                /* the timer: queue deadlines, sweeps */
#define SWEEP_TICKS 10          /* a liveness sweep every second */
#define SWEEP_BURST 10          /* ticks of sweeps after a DISCONNECTED event */
#define CHUNK 1024              /* call slots are allocated this many at a time */
#define MAX_CHUNKS 1024         /* at most a million calls held at once */
#define NIL UINT32_MAX
#define CALL_ID_LEN 8

/* message types as case labels (wire.h has them as strings) */
enum { T_OK = 0x01, T_HELLO = 0x02, T_WORK = 0x03, T_AUTHENTICATED = 0x04,
       T_HEARTBEAT = 0x06, T_ERROR = 0x10, T_UNAUTHORIZED = 0x11 };

enum { CALL_FREE = 0, CALL_QUEUED, CALL_AT_WORKER, CALL_TO_CLIENT };

typedef struct {
    uint32_t gen;
    uint8_t state;
    int worker;                 /* AT_WORKER: the worker's slot */
    double deadline;            /* QUEUED and TO_CLIENT: when it expires */
    zmq_msg_t peer;             /* who called: client (QUEUED, AT_WORKER) or worker (TO_CLIENT) */
    zmq_msg_t uuid;             /* the caller's message id */
    zmq_msg_t body;             /* QUEUED: the WORK body */
    zmq_msg_t aux;              /* QUEUED: the caller's user id; TO_CLIENT: the client's routing id */
    uint32_t next;              /* the queue or the free list */
} bcall;

typedef struct {
    char *rid;                  /* the worker's routing id; NULL: free slot */
    size_t rid_len;
    int inflight;
    long long served;
} bworker;

typedef struct {
    PyObject_HEAD
    pseud_state *st;
    PyObject *module;
    void *front, *back, *mon;   /* mon: PAIR receiving the backend's monitor events */
    fdwatch wf, wb, wm;
    PyObject *front_view, *back_view;
    PyObject *on_ready, *on_tick, *tick;
    PyObject *users;            /* dict user id -> client routing id (secured frontend) */
    PyObject *service_id;
    int running, closed, secured;
    int max_in_flight;
    Py_ssize_t max_queue;
    double timeout;

    bworker *workers;
    int nworkers;               /* slots, live or free */
    int rr;                     /* where the next least-loaded search starts */

    bcall *chunks[MAX_CHUNKS];
    uint32_t nslots;            /* slots allocated so far */
    uint32_t free_head;
    uint32_t q_head, q_tail;
    Py_ssize_t q_len;
    Py_ssize_t in_flight;
    int ticks, burst;
    double last_log;

    /* counters for stats() */
    long long routed, replied, rejected, expired, lost, bad_front, bad_back, anonymous,
        to_clients, joined;
} BrokerObject;

#define B(o) ((BrokerObject *)(o))

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

/* Drain up to BATCH messages from one socket. Returns how many. */
static int
drain(BrokerObject *b, void *sock, int is_front)
{
    wire_message m;
    int n = 0;
    while (n < BATCH && !b->closed) {
        int rc = wire_recv(sock, &m);
        if (rc == WIRE_NOTHING)
            break;
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

static void
drain_monitor(BrokerObject *b)
{
    int got = 0;
    zmq_msg_t f;
    zmq_msg_init(&f);
    while (zmq_msg_recv(&f, b->mon, ZMQ_DONTWAIT) >= 0)
        got = 1;
    zmq_msg_close(&f);
    if (got) {
        b->burst = SWEEP_BURST;
        sweep(b);
    }
}

static void
after_io(BrokerObject *b)
{
    fdwatch_after_io(&b->wf, ZMQ_POLLIN);
    fdwatch_after_io(&b->wb, ZMQ_POLLIN);
    fdwatch_after_io(&b->wm, ZMQ_POLLIN);
}

/* The callback of all three fd watches. */
static PyObject *
broker_on_ready(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    BrokerObject *b = B(op);
    fdwatch_fired(&b->wf, args, nargs, 0, NULL);
    fdwatch_fired(&b->wb, args, nargs, 0, NULL);
    fdwatch_fired(&b->wm, args, nargs, 0, NULL);
    if (b->closed)
        Py_RETURN_NONE;
    drain_monitor(b);
    for (int round = 0; round < 4 && !b->closed; round++) {
        int n = drain(b, b->back, 0);   /* replies first: they free workers */
        n += drain(b, b->front, 1);
        if (n == 0)
            break;
    }
    if (!b->closed)
        after_io(b);
    Py_RETURN_NONE;
}

/* The tick: expire what waited too long, check the workers now and then. */
static PyObject *
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
    after_io(b);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ the type */

static void
broker_close(BrokerObject *b)
{
    if (b->closed)
        return;
    b->closed = 1;
    b->running = 0;
    fdwatch_close(&b->wf);
    fdwatch_close(&b->wb);
    fdwatch_close(&b->wm);
    green_watcher_close(b->tick);
    Py_CLEAR(b->tick);
    if (b->front_view != NULL)
        socket_detach(b->front_view);
    if (b->back_view != NULL)
        socket_detach(b->back_view);
    if (b->back != NULL)
        zmq_socket_monitor(b->back, NULL, 0);
    if (b->front != NULL)
        zmq_close(b->front);
    if (b->back != NULL)
        zmq_close(b->back);
    if (b->mon != NULL)
        zmq_close(b->mon);
    b->front = b->back = b->mon = NULL;
    for (uint32_t c = 0; c < b->nslots / CHUNK; c++) {
        for (uint32_t k = 0; k < CHUNK; k++) {
            zmq_msg_close(&b->chunks[c][k].peer);
            zmq_msg_close(&b->chunks[c][k].uuid);
            zmq_msg_close(&b->chunks[c][k].body);
            zmq_msg_close(&b->chunks[c][k].aux);
        }
        PyMem_Free(b->chunks[c]);
        b->chunks[c] = NULL;
    }
    b->nslots = 0;
    b->free_head = b->q_head = b->q_tail = NIL;
    b->q_len = b->in_flight = 0;
    for (int w = 0; w < b->nworkers; w++)
        PyMem_Free(b->workers[w].rid);
    PyMem_Free(b->workers);
    b->workers = NULL;
    b->nworkers = 0;
}

static PyMethodDef on_ready_def = {"_on_ready", (PyCFunction)(void (*)(void))broker_on_ready,
                                   METH_FASTCALL, NULL};
static PyMethodDef on_tick_def = {"_on_tick", broker_on_tick, METH_NOARGS, NULL};

static int
set_router_options(pseud_state *st, void *s, const char *rid, size_t rid_len,
                   long long max_message_size, int heartbeat_ms)
{
    int one = 1, zero = 0, hb_timeout = heartbeat_ms * 3;
    int64_t maxsize = max_message_size;
    if (zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)) != 0
        || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, rid_len) != 0
        || (maxsize > 0 && zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize)) != 0)
        || (heartbeat_ms > 0
            && (zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &heartbeat_ms, sizeof(int)) != 0
                || zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(int)) != 0))) {
        errors_raise_what(st, zmq_errno(), "configuring a broker socket");
        return -1;
    }
    return 0;
}

static int
broker_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"service_id", "max_in_flight", "max_queue", "timeout",
                             "heartbeat", "max_message_size", NULL};
    BrokerObject *b = B(op);
    PyObject *sid_in;
    int max_in_flight = 16;
    Py_ssize_t max_queue = 1000;
    double timeout = 5.0, heartbeat = 0.5;
    long long max_message_size = 64 * 1024 * 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|indd$L", kwlist, &sid_in, &max_in_flight,
                                     &max_queue, &timeout, &heartbeat, &max_message_size))
        return -1;
    if (b->front != NULL || b->closed) {
        PyErr_SetString(PyExc_RuntimeError, "pseud: a Broker is initialised once");
        return -1;
    }
    PyObject *sid = convert_identity(sid_in, "the service id");
    if (sid == NULL)
        return -1;
    if (sid == Py_None || PyBytes_GET_SIZE(sid) == 0 || PyBytes_GET_SIZE(sid) > 200
        || PyBytes_AS_STRING(sid)[0] == '\0') {
        Py_DECREF(sid);
        PyErr_SetString(PyExc_ValueError, "pseud: the broker's service id must be 1 to 200 "
                        "bytes not starting with a zero byte, as Server('svc') takes");
        return -1;
    }
    if (max_in_flight < 1 || max_queue < 0 || !(timeout > 0) || heartbeat < 0) {
        Py_DECREF(sid);
        PyErr_SetString(PyExc_ValueError, "pseud: Broker needs max_in_flight >= 1, "
                        "max_queue >= 0, timeout > 0 and heartbeat >= 0 (seconds; 0: off)");
        return -1;
    }
    b->service_id = sid;
    b->max_in_flight = max_in_flight;
    b->max_queue = max_queue;
    b->timeout = timeout;
    int hb_ms = (int)(heartbeat * 1000);
    char back_id[256];
    size_t sid_len = PyBytes_GET_SIZE(sid);
    memcpy(back_id, BROKER_ID_PREFIX, BROKER_ID_PREFIX_LEN);
    memcpy(back_id + BROKER_ID_PREFIX_LEN, PyBytes_AS_STRING(sid), sid_len);

    pseud_state *st = b->st;
    b->front = zmq_socket(st->zmq_ctx, ZMQ_ROUTER);
    b->back = zmq_socket(st->zmq_ctx, ZMQ_ROUTER);
    b->mon = zmq_socket(st->zmq_ctx, ZMQ_PAIR);
    if (b->front == NULL || b->back == NULL || b->mon == NULL) {
        errors_raise_what(st, zmq_errno(), "creating the broker's sockets");
        goto fail;
    }
    if (set_router_options(st, b->front, PyBytes_AS_STRING(sid), sid_len,
                           max_message_size, hb_ms) < 0
        || set_router_options(st, b->back, back_id, BROKER_ID_PREFIX_LEN + sid_len,
                              max_message_size, hb_ms) < 0)
        goto fail;
    char mon_ep[64];
    static unsigned long long monitors;   /* names are never reused (unbinding is lazy) */
    snprintf(mon_ep, sizeof(mon_ep), "inproc://pseud.broker-monitor.%llu", ++monitors);
    int zero = 0;
    if (zmq_socket_monitor(b->back, mon_ep, ZMQ_EVENT_DISCONNECTED) != 0
        || zmq_setsockopt(b->mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0
        || zmq_connect(b->mon, mon_ep) != 0) {
        errors_raise_what(st, zmq_errno(), "monitoring the broker's backend");
        goto fail;
    }
    if (fdwatch_init(&b->wf, st, b->front) < 0 || fdwatch_init(&b->wb, st, b->back) < 0
        || fdwatch_init(&b->wm, st, b->mon) < 0)
        goto fail;
    b->on_ready = PyCMethod_New(&on_ready_def, op, NULL, NULL);
    b->on_tick = PyCMethod_New(&on_tick_def, op, NULL, NULL);
    b->users = PyDict_New();
    if (b->on_ready == NULL || b->on_tick == NULL || b->users == NULL)
        goto fail;
    return 0;
fail:
    broker_close(b);
    return -1;
}

static PyObject *
broker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pseud_state *st = pseud_state_from_type(type);
    if (st == NULL)
        return NULL;
    BrokerObject *b = (BrokerObject *)type->tp_alloc(type, 0);
    if (b == NULL)
        return NULL;
    b->st = st;
    b->module = PyType_GetModule(type);
    Py_XINCREF(b->module);
    b->free_head = b->q_head = b->q_tail = NIL;
    b->last_log = -1e9;
    return (PyObject *)b;
}

static int
require_open(BrokerObject *b)
{
    if (b->front == NULL) {
        PyErr_SetString(PyExc_RuntimeError, b->closed ? "pseud: this broker is stopped"
                        : "pseud: Broker.__init__ was not called");
        return -1;
    }
    return 0;
}

static PyObject *
bind_one(BrokerObject *b, void *sock, PyObject *endpoint)
{
    if (require_open(b) < 0)
        return NULL;
    PyObject *ep = convert_endpoint(endpoint);
    if (ep == NULL)
        return NULL;
    if (zmq_bind(sock, PyBytes_AS_STRING(ep)) != 0) {
        errors_raise_what(b->st, zmq_errno(), "cannot bind %R", ep);
        Py_DECREF(ep);
        return NULL;
    }
    Py_DECREF(ep);
    if (b->running)
        after_io(b);
    return convert_last_endpoint(b->st, sock);
}

static PyObject *
broker_bind_frontend(PyObject *op, PyObject *endpoint)
{
    return bind_one(B(op), B(op)->front, endpoint);
}

static PyObject *
broker_bind_backend(PyObject *op, PyObject *endpoint)
{
    return bind_one(B(op), B(op)->back, endpoint);
}

static PyObject *
broker_start(PyObject *op, PyObject *unused)
{
    (void)unused;
    BrokerObject *b = B(op);
    if (require_open(b) < 0)
        return NULL;
    if (b->running)
        Py_RETURN_NONE;
    if (green_ensure(b->st) < 0)
        return NULL;
    if (b->tick == NULL && (b->tick = green_timer_repeat_new(b->st, TICK)) == NULL)
        return NULL;
    if (fdwatch_start(&b->wf, b->on_ready) < 0 || fdwatch_start(&b->wb, b->on_ready) < 0
        || fdwatch_start(&b->wm, b->on_ready) < 0
        || green_watcher_start(b->tick, b->on_tick, NULL) < 0) {
        fdwatch_stop(&b->wf);
        fdwatch_stop(&b->wb);
        fdwatch_stop(&b->wm);
        return NULL;
    }
    b->running = 1;
    /* whatever arrived before: the edges may be gone */
    if (green_run_callback(b->st, b->on_ready, Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
broker_stop(PyObject *op, PyObject *unused)
{
    (void)unused;
    broker_close(B(op));
    Py_RETURN_NONE;
}

static PyObject *
view(BrokerObject *b, void *sock, PyObject **cache)
{
    if (require_open(b) < 0)
        return NULL;
    if (*cache != NULL && socket_handle(*cache) == NULL)
        Py_CLEAR(*cache);
    if (*cache == NULL && (*cache = socket_wrap(b->st, sock, 0)) == NULL)
        return NULL;
    return Py_NewRef(*cache);
}

static PyObject *
get_frontend_socket(PyObject *op, void *closure)
{
    (void)closure;
    return view(B(op), B(op)->front, &B(op)->front_view);
}

static PyObject *
get_backend_socket(PyObject *op, void *closure)
{
    (void)closure;
    return view(B(op), B(op)->back, &B(op)->back_view);
}

static PyObject *
get_secured(PyObject *op, void *closure)
{
    (void)closure;
    return PyBool_FromLong(B(op)->secured);
}

static int
set_secured(PyObject *op, PyObject *value, void *closure)
{
    (void)closure;
    int v = value ? PyObject_IsTrue(value) : 0;
    if (v < 0)
        return -1;
    B(op)->secured = v;
    return 0;
}

static PyObject *
broker_stats(PyObject *op, PyObject *unused)
{
    (void)unused;
    BrokerObject *b = B(op);
    PyObject *workers = PyDict_New();
    if (workers == NULL)
        return NULL;
    for (int w = 0; w < b->nworkers; w++) {
        bworker *wk = &b->workers[w];
        if (wk->rid == NULL)
            continue;
        PyObject *key = PyBytes_FromStringAndSize(wk->rid, wk->rid_len);
        PyObject *val = Py_BuildValue("{s:i,s:L}", "in_flight", wk->inflight, "served", wk->served);
        if (key == NULL || val == NULL || PyDict_SetItem(workers, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(workers);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    return Py_BuildValue("{s:N,s:n,s:n,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L}",
                         "workers", workers, "queued", b->q_len, "in_flight", b->in_flight,
                         "routed", b->routed, "replied", b->replied, "rejected", b->rejected,
                         "expired", b->expired, "lost", b->lost, "bad_frontend", b->bad_front,
                         "bad_backend", b->bad_back, "anonymous", b->anonymous,
                         "to_clients", b->to_clients, "joined", b->joined);
}

static int
broker_traverse(PyObject *op, visitproc visit, void *arg)
{
    BrokerObject *b = B(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(b->module);
    Py_VISIT(b->front_view);
    Py_VISIT(b->back_view);
    Py_VISIT(b->on_ready);
    Py_VISIT(b->on_tick);
    Py_VISIT(b->tick);
    Py_VISIT(b->users);
    fdwatch_traverse(&b->wf, visit, arg);
    fdwatch_traverse(&b->wb, visit, arg);
    fdwatch_traverse(&b->wm, visit, arg);
    return 0;
}

static int
broker_clear(PyObject *op)
{
    BrokerObject *b = B(op);
    broker_close(b);
    Py_CLEAR(b->front_view);
    Py_CLEAR(b->back_view);
    Py_CLEAR(b->on_ready);
    Py_CLEAR(b->on_tick);
    Py_CLEAR(b->users);
    fdwatch_clear(&b->wf);
    fdwatch_clear(&b->wb);
    fdwatch_clear(&b->wm);
    return 0;
}

static void
broker_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    broker_clear(op);
    Py_CLEAR(B(op)->service_id);
    Py_CLEAR(B(op)->module);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef broker_methods[] = {
    {"bind_frontend", broker_bind_frontend, METH_O,
     "bind_frontend($self, endpoint, /)\n--\n\nBind where clients connect; return the endpoint bound."},
    {"bind_backend", broker_bind_backend, METH_O,
     "bind_backend($self, endpoint, /)\n--\n\nBind where workers connect; return the endpoint bound."},
    {"start", broker_start, METH_NOARGS, "start($self, /)\n--\n\nRoute from the gevent hub."},
    {"stop", broker_stop, METH_NOARGS, "stop($self, /)\n--\n\nClose both sockets, forget every call."},
    {"stats", broker_stats, METH_NOARGS, "stats($self, /)\n--\n\nCounters and the live workers."},
    {NULL},
};

static PyGetSetDef broker_getset[] = {
    {"frontend_socket", get_frontend_socket, NULL, "Socket view of the frontend (plugins).", NULL},
    {"backend_socket", get_backend_socket, NULL, "Socket view of the backend.", NULL},
    {"secured", get_secured, set_secured,
     "True: frontend messages without a ZAP user id are dropped.", NULL},
    {NULL},
};

static PyType_Slot broker_slots[] = {
    {Py_tp_doc, "Broker core: see pseud.Broker."},
    {Py_tp_new, broker_new},
    {Py_tp_init, broker_init},
    {Py_tp_traverse, broker_traverse},
    {Py_tp_clear, broker_clear},
    {Py_tp_dealloc, broker_dealloc},
    {Py_tp_methods, broker_methods},
    {Py_tp_getset, broker_getset},
    {0, NULL},
};

static PyType_Spec broker_spec = {
    .name = "pseud._pseud.Broker",
    .basicsize = sizeof(BrokerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = broker_slots,
};

int
broker_init_module(PyObject *module)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &broker_spec, NULL);
    if (tp == NULL)
        return -1;
    int rc = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return rc;
}
