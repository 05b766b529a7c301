/* raw-c: pseud's six-frame exchange straight over libzmq ROUTER sockets,
 * no RPC layer: the physical limit the other rows are compared with.
 *
 *   raw_peer serve bind|connect ENDPOINT
 *   raw_peer call SCENARIO bind|connect ENDPOINT SECONDS   (-N: N calls)
 *
 * Same line protocol with the driver as bench/peer.py (see control.py).
 * The body of a WORK message is the msgpack array ["echo", [payload], {}]
 * built below; the responder answers OK with the msgpack of the payload,
 * which it cuts out of the request instead of decoding it. */
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
#define WORK_HEAD 7                 /* 0x93, 0xa4 "echo", 0x91 */
#define IN_FLIGHT 100
#define PROCESSES 50
#define SMALL 30
#define MEGABYTE (1 << 20)
#define RSS_EVERY 250000            /* rss-3M: a checkpoint every RSS_EVERY calls */
#define RSS_CALLS 3000000           /* (the driver reads both sides' RSS at each) */

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

static int serve(int bind, const char *endpoint)
{
    void *ctx = zmq_ctx_new();
    void *sock = router(ctx, 1);
    attach(sock, bind, endpoint);
    if (!bind) { printf("{\"endpoint\": \"%s\"}\n", endpoint); fflush(stdout); }
    zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0}, {NULL, 0, ZMQ_POLLIN, 0}};
    char line[64];
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) die("poll");
        /* the driver asks for usage; a closed pipe polls as POLLHUP, which
         * zmq_poll reports as ZMQ_POLLERR, not POLLIN: fgets sees the end */
        if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
            if (!fgets(line, sizeof line, stdin)) return 0;
            printf("{\"cpu\": %.6f, \"rss_kb\": %ld}\n", cpu_seconds(), rss_kb());
            fflush(stdout);
        }
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
    int flight = !strcmp(scenario, "pipelined") || !strcmp(scenario, "rss-3M") ? IN_FLIGHT : 1;
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
    fprintf(stderr, "usage: raw_peer serve bind|connect ENDPOINT\n"
                    "       raw_peer call SCENARIO bind|connect ENDPOINT SECONDS\n");
    return 1;
}
