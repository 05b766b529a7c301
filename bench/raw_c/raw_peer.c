/* raw-c: pseud's six-frame exchange straight over libzmq ROUTER sockets,
 * no RPC layer: the physical limit the other rows are compared with.
 *
 *   raw_peer serve bind|connect ENDPOINT
 *   raw_peer call SCENARIO bind|connect ENDPOINT SECONDS   (-N: N calls)
 *   raw_peer broker ENDPOINT WORKERS
 *   raw_peer worker BACKEND
 *
 * Same line protocol with the driver as bench/peer.py (see control.py).
 * The body of a WORK message is the msgpack array ["echo", [payload], {}]
 * built below; the responder answers OK with the msgpack of the payload,
 * which it cuts out of the request instead of decoding it.
 *
 * broker and worker are the broker topology's floor (the broker's
 * scenarios, docs/guide/scaling.rst): a broker that only moves frames
 * between a frontend and a backend ROUTER, as pseud's broker routes them,
 * and a responder that joins it the way a pseud worker does. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define RESPONDER_ID "bench"
#define WORK 0x03
#define OK 0x01
#define ERROR 0x10
#define WORK_HEAD 7                 /* 0x93, 0xa4 "echo", 0x91 */
#define IN_FLIGHT 100
#define PROCESSES 50
#define SMALL 30
#define MEGABYTE (1 << 20)
#define RSS_EVERY 250000            /* rss-3M: a checkpoint every RSS_EVERY calls */
#define RSS_CALLS 3000000           /* (the driver reads both sides' RSS at each) */
#define CALL_ID_LEN 8               /* broker: slot index + generation, 4 bytes each */
#define CALL_SLOTS 1024             /* broker: calls in flight at most (10 x IN_FLIGHT) */
#define MAX_WORKERS 64
#define MAX_ID 255                  /* a ZeroMQ routing id is 1 to 255 bytes */

static void die(const char *what)
{
    fprintf(stderr, "raw_peer: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ own usage */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
         + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void emit_event(const char *event, long calls, double seconds)
{
    printf("{\"event\": \"%s\", \"calls\": %ld, \"seconds\": %.6f, "
           "\"cpu\": %.6f, \"rss_kb\": %ld}\n",
           event, calls, seconds, cpu_seconds(), rss_kb());
    fflush(stdout);
}

static void wait_go(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0)
        exit(3);
}

/* ------------------------------------------------------------ sockets */

static void *router(void *ctx, int with_id)
{
    int one = 1, zero = 0;
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (!sock) die("socket");
    if (with_id) zmq_setsockopt(sock, ZMQ_ROUTING_ID, RESPONDER_ID, strlen(RESPONDER_ID));
    zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    return sock;
}

/* bind or connect; prints and returns the resolved endpoint when binding */
static void attach(void *sock, int bind, const char *endpoint)
{
    if (bind) {
        char real[256];
        size_t len = sizeof real;
        if (zmq_bind(sock, endpoint) != 0) die("bind");
        zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, real, &len);
        printf("{\"endpoint\": \"%s\"}\n", real);
        fflush(stdout);
    } else if (zmq_connect(sock, endpoint) != 0) {
        die("connect");
    }
}

/* frames of one message */
typedef struct { zmq_msg_t part[6]; int count; } message_t;

static int recv_message(void *sock, message_t *m)
{
    int more = 1;
    m->count = 0;
    while (more) {
        zmq_msg_t scratch, *part = m->count < 6 ? &m->part[m->count] : &scratch;
        zmq_msg_init(part);
        if (zmq_msg_recv(part, sock, 0) < 0) die("recv");
        more = zmq_msg_more(part);
        if (part == &scratch) zmq_msg_close(part);
        m->count++;
    }
    return m->count == 6;
}

static void close_message(message_t *m)
{
    for (int i = 0; i < m->count && i < 6; i++) zmq_msg_close(&m->part[i]);
}

static int send_frame(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ responder */

/* A line from the driver asks for this process's usage. 0: stdin ended.
 * A closed pipe polls as POLLHUP, which zmq_poll reports as ZMQ_POLLERR,
 * not POLLIN: fgets then sees the end. */
static int answer_usage(long dropped)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 0;
    if (dropped < 0)
        printf("{\"cpu\": %.6f, \"rss_kb\": %ld}\n", cpu_seconds(), rss_kb());
    else
        printf("{\"cpu\": %.6f, \"rss_kb\": %ld, \"dropped\": %ld}\n",
               cpu_seconds(), rss_kb(), dropped);
    fflush(stdout);
    return 1;
}

/* Answers every WORK on `sock` until stdin ends. */
static int respond(void *sock)
{
    zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0}, {NULL, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) die("poll");
        if ((items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && !answer_usage(-1))
            return 0;
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        int events = ZMQ_POLLIN;
        size_t size = sizeof events;
        while (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &size) == 0
               && (events & ZMQ_POLLIN)) {
            message_t m;
            int whole = recv_message(sock, &m);
            size_t body = whole ? zmq_msg_size(&m.part[5]) : 0;
            if (whole && zmq_msg_size(&m.part[4]) == 1
                && *(uint8_t *)zmq_msg_data(&m.part[4]) == WORK && body > WORK_HEAD) {
                uint8_t ok = OK;
                const char *b = zmq_msg_data(&m.part[5]);
                for (int i = 0; i < 4; i++)
                    send_frame(sock, zmq_msg_data(&m.part[i]), zmq_msg_size(&m.part[i]), 1);
                send_frame(sock, &ok, 1, 1);
                send_frame(sock, b + WORK_HEAD, body - WORK_HEAD - 1, 0);
            }
            close_message(&m);
            size = sizeof events;
        }
    }
}

static int serve(int bind, const char *endpoint)
{
    void *ctx = zmq_ctx_new();
    void *sock = router(ctx, 1);
    attach(sock, bind, endpoint);
    if (!bind) { printf("{\"endpoint\": \"%s\"}\n", endpoint); fflush(stdout); }
    return respond(sock);
}

/* A worker behind the broker: the responder, connected to the broker's
 * backend with ZMQ_PROBE_ROUTER as a pseud worker is (Server.connect_broker),
 * so that its connection's first message, an empty probe, announces it.
 * No fixed routing id: the broker uses the one it sees, and N workers need
 * N different ones. */
static int worker(const char *backend)
{
    int one = 1;
    void *ctx = zmq_ctx_new();
    void *sock = router(ctx, 0);
    zmq_setsockopt(sock, ZMQ_PROBE_ROUTER, &one, sizeof one);
    attach(sock, 0, backend);
    printf("{\"event\": \"serving\"}\n");
    fflush(stdout);
    return respond(sock);
}

/* ------------------------------------------------------------ broker */

/* A call at a worker: who asked (the client's routing id and uuid), the
 * worker it went to, and the generation its call id carries, so that a
 * stale or forged call id never matches a reused slot. */
typedef struct {
    zmq_msg_t client, uuid;
    uint32_t gen, next;
    int worker;                     /* -1: free */
} call_t;

typedef struct {
    char id[MAX_ID];
    size_t len;
    int inflight;
} worker_t;

typedef struct {
    void *front, *back;
    call_t calls[CALL_SLOTS];
    uint32_t free_head;             /* CALL_SLOTS: none free */
    worker_t workers[MAX_WORKERS];
    int nworkers;
    long dropped;                   /* messages routed nowhere (see broker_front) */
} broker_t;

static int worker_find(broker_t *b, const void *id, size_t len)
{
    for (int w = 0; w < b->nworkers; w++)
        if (b->workers[w].len == len && !memcmp(b->workers[w].id, id, len))
            return w;
    return -1;
}

/* The worker with the fewest calls in flight, or -1 with none. */
static int worker_pick(broker_t *b)
{
    int best = -1;
    for (int w = 0; w < b->nworkers; w++)
        if (best < 0 || b->workers[w].inflight < b->workers[best].inflight)
            best = w;
    return best;
}

/* The worker is gone (a send to it was unroutable): its calls are
 * dropped, the last worker takes its place. A floor measurement never
 * loses one; this only keeps the table right if it happens. */
static void worker_lost(broker_t *b, int w)
{
    for (uint32_t i = 0; i < CALL_SLOTS; i++) {
        call_t *c = &b->calls[i];
        if (c->worker == w) {
            zmq_msg_close(&c->client); zmq_msg_init(&c->client);
            zmq_msg_close(&c->uuid); zmq_msg_init(&c->uuid);
            c->worker = -1;
            c->next = b->free_head;
            b->free_head = i;
            b->dropped++;
        } else if (c->worker == b->nworkers - 1) {
            c->worker = w;
        }
    }
    b->workers[w] = b->workers[--b->nworkers];
}

static void call_free(broker_t *b, uint32_t i)
{
    call_t *c = &b->calls[i];
    b->workers[c->worker].inflight--;
    zmq_msg_close(&c->client); zmq_msg_init(&c->client);
    zmq_msg_close(&c->uuid); zmq_msg_init(&c->uuid);
    c->worker = -1;
    c->next = b->free_head;
    b->free_head = i;
}

/* Moves a received frame out (zmq_msg_send empties it: zero copy). */
static int send_part(void *sock, zmq_msg_t *part, int more)
{
    return zmq_msg_send(part, sock, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* [client, '', v1, uuid, WORK, body] -> [worker, '', v1, call_id, WORK, body].
 * No queue and no deadlines: with no worker or a full table the call is
 * dropped, nothing is replied and it is counted (`dropped`, in the usage
 * line); the caller would time out. The benchmark never gets there: it
 * waits for its workers and keeps at most IN_FLIGHT calls in flight. */
static void broker_front(broker_t *b, message_t *m)
{
    if (m->count != 6 || zmq_msg_size(&m->part[4]) != 1
        || *(uint8_t *)zmq_msg_data(&m->part[4]) != WORK) {
        b->dropped++;
        return;
    }
    int w = worker_pick(b);
    if (w < 0 || b->free_head == CALL_SLOTS) {
        b->dropped++;
        return;
    }
    uint32_t i = b->free_head;
    call_t *c = &b->calls[i];
    unsigned char id[CALL_ID_LEN];
    c->gen++;
    memcpy(id, &i, 4);
    memcpy(id + 4, &c->gen, 4);
    worker_t *wk = &b->workers[w];
    /* an unroutable first frame sends nothing: stop there, or the next
     * frame would be taken for a routing id */
    if (send_frame(b->back, wk->id, wk->len, 1) < 0) {
        b->dropped++;
        if (zmq_errno() == EHOSTUNREACH) worker_lost(b, w);
        return;
    }
    send_frame(b->back, "", 0, 1);
    send_part(b->back, &m->part[2], 1);
    send_frame(b->back, id, CALL_ID_LEN, 1);
    send_part(b->back, &m->part[4], 1);
    send_part(b->back, &m->part[5], 0);
    b->free_head = c->next;
    zmq_msg_move(&c->client, &m->part[0]);
    zmq_msg_move(&c->uuid, &m->part[3]);
    c->worker = w;
    wk->inflight++;
}

/* A probe [worker, ''] announces a worker; a reply [worker, '', v1,
 * call_id, OK|ERROR, body] goes back as [client, '', v1, uuid, type, body]. */
static void broker_back(broker_t *b, message_t *m)
{
    size_t len = zmq_msg_size(&m->part[0]);
    if (m->count == 2 && zmq_msg_size(&m->part[1]) == 0) {
        if (len <= MAX_ID && b->nworkers < MAX_WORKERS
            && worker_find(b, zmq_msg_data(&m->part[0]), len) < 0) {
            worker_t *wk = &b->workers[b->nworkers++];
            memcpy(wk->id, zmq_msg_data(&m->part[0]), len);
            wk->len = len;
            wk->inflight = 0;
        }
        return;
    }
    uint32_t i, gen;
    if (m->count != 6 || zmq_msg_size(&m->part[3]) != CALL_ID_LEN
        || zmq_msg_size(&m->part[4]) != 1) {
        b->dropped++;
        return;
    }
    uint8_t type = *(uint8_t *)zmq_msg_data(&m->part[4]);
    memcpy(&i, zmq_msg_data(&m->part[3]), 4);
    memcpy(&gen, (char *)zmq_msg_data(&m->part[3]) + 4, 4);
    if ((type != OK && type != ERROR) || i >= CALL_SLOTS || b->calls[i].worker < 0
        || b->calls[i].gen != gen
        || worker_find(b, zmq_msg_data(&m->part[0]), len) != b->calls[i].worker) {
        b->dropped++;
        return;
    }
    call_t *c = &b->calls[i];
    if (send_part(b->front, &c->client, 1) == 0) {     /* else the client is gone */
        send_frame(b->front, "", 0, 1);
        send_part(b->front, &m->part[2], 1);
        send_part(b->front, &c->uuid, 1);
        send_part(b->front, &m->part[4], 1);
        send_part(b->front, &m->part[5], 0);
    } else {
        b->dropped++;
    }
    call_free(b, i);
}

/* Every message `sock` has now, each handed to `route`. */
static void drain(broker_t *b, void *sock, void (*route)(broker_t *, message_t *))
{
    int events = ZMQ_POLLIN;
    size_t size = sizeof events;
    while (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &size) == 0
           && (events & ZMQ_POLLIN)) {
        message_t m;
        recv_message(sock, &m);
        route(b, &m);
        close_message(&m);
        size = sizeof events;
    }
}

static int broker(const char *endpoint, int workers)
{
    static broker_t b;              /* the call table: too big for the stack */
    char front[256], back[256];
    size_t len = sizeof front;
    void *ctx = zmq_ctx_new();
    b.front = router(ctx, 1);       /* the caller addresses RESPONDER_ID */
    b.back = router(ctx, 0);
    if (zmq_bind(b.front, endpoint) != 0) die("bind");
    zmq_getsockopt(b.front, ZMQ_LAST_ENDPOINT, front, &len);
    if (zmq_bind(b.back, endpoint) != 0) die("bind");
    len = sizeof back;
    zmq_getsockopt(b.back, ZMQ_LAST_ENDPOINT, back, &len);
    for (uint32_t i = 0; i < CALL_SLOTS; i++) {
        zmq_msg_init(&b.calls[i].client);
        zmq_msg_init(&b.calls[i].uuid);
        b.calls[i].worker = -1;
        b.calls[i].next = i + 1;
    }
    b.free_head = 0;
    printf("{\"endpoint\": \"%s\", \"backend\": \"%s\"}\n", front, back);
    fflush(stdout);
    int joined = 0;
    zmq_pollitem_t items[3] = {{b.front, 0, ZMQ_POLLIN, 0}, {b.back, 0, ZMQ_POLLIN, 0},
                               {NULL, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 3, -1) < 0) die("poll");
        if ((items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && !answer_usage(b.dropped))
            return 0;
        if (items[0].revents & ZMQ_POLLIN) drain(&b, b.front, broker_front);
        if (items[1].revents & ZMQ_POLLIN) drain(&b, b.back, broker_back);
        if (!joined && b.nworkers >= workers) {
            joined = 1;
            printf("{\"event\": \"joined\", \"workers\": %d}\n", b.nworkers);
            fflush(stdout);
        }
    }
}

/* ------------------------------------------------------------ caller */

typedef struct {
    void *sock;
    unsigned char *work;            /* the WORK body, built once */
    size_t work_len;
    uint64_t next_id;
} caller_t;

static size_t pack_bin_header(unsigned char *out, size_t len)
{
    if (len < 256) { out[0] = 0xc4; out[1] = (unsigned char)len; return 2; }
    if (len < 65536) { out[0] = 0xc5; out[1] = len >> 8; out[2] = len & 0xff; return 3; }
    out[0] = 0xc6;
    for (int i = 0; i < 4; i++) out[1 + i] = (len >> (24 - 8 * i)) & 0xff;
    return 5;
}

static void build_work(caller_t *c, size_t payload)
{
    static const unsigned char head[WORK_HEAD] = {0x93, 0xa4, 'e', 'c', 'h', 'o', 0x91};
    c->work = malloc(WORK_HEAD + 5 + payload + 1);
    memcpy(c->work, head, WORK_HEAD);
    size_t n = WORK_HEAD + pack_bin_header(c->work + WORK_HEAD, payload);
    memset(c->work + n, 'x', payload);
    n += payload;
    c->work[n++] = 0x80;                       /* kwargs {} */
    c->work_len = n;
}

static int send_work(caller_t *c)
{
    unsigned char uuid[16] = {0}, type = WORK;
    uint64_t id = ++c->next_id;
    memcpy(uuid + 8, &id, sizeof id);
    if (send_frame(c->sock, RESPONDER_ID, strlen(RESPONDER_ID), 1) < 0)
        return -1;                             /* not routable yet */
    send_frame(c->sock, "", 0, 1);
    send_frame(c->sock, "v1", 2, 1);
    send_frame(c->sock, uuid, 16, 1);
    send_frame(c->sock, &type, 1, 1);
    return send_frame(c->sock, c->work, c->work_len, 0);
}

static void recv_ok(caller_t *c)
{
    message_t m;
    if (!recv_message(c->sock, &m) || *(uint8_t *)zmq_msg_data(&m.part[4]) != OK
        || zmq_msg_size(&m.part[5]) != c->work_len - WORK_HEAD - 1) {
        fprintf(stderr, "raw_peer: bad reply\n");
        exit(2);
    }
    close_message(&m);
}

static void warm(caller_t *c)
{
    double deadline = now() + 30;
    zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
    for (;;) {
        if (send_work(c) == 0 && zmq_poll(&item, 1, 1000) == 1) {
            recv_ok(c);
            return;
        }
        if (now() > deadline) die("peer unreachable");
        usleep(50000);
    }
}

/* calls a batch: `flight` sent, then `flight` replies */
static long batch(caller_t *c, int flight)
{
    for (int i = 0; i < flight; i++)
        if (send_work(c) < 0) die("send");
    for (int i = 0; i < flight; i++) recv_ok(c);
    return flight;
}

static caller_t open_caller(void *ctx, int bind, const char *endpoint, size_t payload)
{
    caller_t c = {router(ctx, 0), NULL, 0, 0};
    attach(c.sock, bind, endpoint);
    build_work(&c, payload);
    warm(&c);
    return c;
}

/* seconds < 0: a fixed count of -seconds calls instead of a duration (the
 * callgrind mode measures instructions over an exact number of calls) */
static long run_timed(caller_t *c, int flight, int per_check, double seconds, double *elapsed)
{
    long calls = 0, count = seconds < 0 ? (long)-seconds : 0;
    double start = now();
    while (count ? calls < count : now() < start + seconds)
        for (int i = 0; i < per_check; i++) calls += batch(c, flight);
    *elapsed = now() - start;
    return calls;
}

static int call_processes(const char *endpoint, double seconds)
{
    int ready[2], go[2], result[2];
    pid_t children[PROCESSES];
    if (pipe(ready) || pipe(go) || pipe(result)) return 2;
    for (int i = 0; i < PROCESSES; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            void *ctx = zmq_ctx_new();
            caller_t c = open_caller(ctx, 0, endpoint, SMALL);
            char byte = 'r', line[128];
            double elapsed;
            if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1) _exit(2);
            double cpu = cpu_seconds();
            long calls = run_timed(&c, 1, 10, seconds, &elapsed);
            int n = snprintf(line, sizeof line, "%ld %.6f %.6f\n", calls, elapsed,
                             cpu_seconds() - cpu);
            if (write(result[1], line, n) != n) _exit(2);
            _exit(0);
        }
    }
    char buf[PROCESSES];
    for (int got = 0; got < PROCESSES;) {
        ssize_t n = read(ready[0], buf, PROCESSES - got);
        if (n <= 0) return 2;
        got += n;
    }
    emit_event("ready", 0, 0);
    wait_go();
    memset(buf, 'g', PROCESSES);
    if (write(go[1], buf, PROCESSES) != PROCESSES) return 2;
    FILE *results = fdopen(result[0], "r");
    long total = 0;
    double longest = 0, cpu = 0;
    for (int i = 0; i < PROCESSES; i++) {
        long calls;
        double elapsed, used;
        if (fscanf(results, "%ld %lf %lf", &calls, &elapsed, &used) != 3) return 2;
        total += calls;
        cpu += used;
        if (elapsed > longest) longest = elapsed;
    }
    for (int i = 0; i < PROCESSES; i++) waitpid(children[i], NULL, 0);
    printf("{\"event\": \"done\", \"calls\": %ld, \"seconds\": %.6f, \"children_cpu\": %.6f, "
           "\"cpu\": %.6f, \"rss_kb\": %ld}\n", total, longest, cpu, cpu_seconds(), rss_kb());
    fflush(stdout);
    return 0;
}

static int call(const char *scenario, int bind, const char *endpoint, double seconds)
{
    if (!strcmp(scenario, "greenlets-100")) {
        printf("{\"event\": \"n/a\", \"reason\": \"no greenlets in C (100 calls in flight: see pipelined)\"}\n");
        return 0;
    }
    if (!strcmp(scenario, "processes-50"))
        return call_processes(endpoint, seconds);
    int bulk = !strcmp(scenario, "bulk-1MB");
    int flight = !strcmp(scenario, "pipelined") || !strcmp(scenario, "broker-pipelined")
                 || !strcmp(scenario, "rss-3M") ? IN_FLIGHT : 1;
    void *ctx = zmq_ctx_new();
    caller_t c = open_caller(ctx, bind, endpoint, bulk ? MEGABYTE : SMALL);
    double elapsed;
    long calls = 0;
    emit_event("ready", 0, 0);
    wait_go();
    if (!strcmp(scenario, "rss-3M")) {
        double start = now();
        for (long mark = RSS_EVERY; mark <= RSS_CALLS; mark += RSS_EVERY) {
            while (calls < mark) calls += batch(&c, flight);
            if (mark < RSS_CALLS) {
                emit_event("checkpoint", calls, now() - start);
                wait_go();
            }
        }
        elapsed = now() - start;
    } else {
        calls = run_timed(&c, flight, bulk ? 1 : 100 / flight, seconds, &elapsed);
    }
    emit_event("done", calls, elapsed);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && !strcmp(argv[1], "serve"))
        return serve(!strcmp(argv[2], "bind"), argv[3]);
    if (argc == 6 && !strcmp(argv[1], "call"))
        return call(argv[2], !strcmp(argv[3], "bind"), argv[4], atof(argv[5]));
    if (argc == 4 && !strcmp(argv[1], "broker") && atoi(argv[3]) > 0)
        return broker(argv[2], atoi(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "worker"))
        return worker(argv[2]);
    fprintf(stderr, "usage: raw_peer serve bind|connect ENDPOINT\n"
                    "       raw_peer call SCENARIO bind|connect ENDPOINT SECONDS\n"
                    "       raw_peer broker ENDPOINT WORKERS\n"
                    "       raw_peer worker BACKEND\n");
    return 1;
}
