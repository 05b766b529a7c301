/* Socket options: the table of every option a Socket knows (the SOCKOPTS
 * X-macro drives the attribute names, the module constants and the
 * get/set conversions), and the module's socket constants. sockopt.c. */
#ifndef PSEUD_SOCKOPT_H
#define PSEUD_SOCKOPT_H

#include "module.h"

#include <zmq.h>

enum { OPT_INT, OPT_INT64, OPT_BYTES, OPT_STR, OPT_KEY };
enum { ACC_R = 1, ACC_W = 2, ACC_RW = 3 };

typedef struct {
    const char *attr;       /* attribute name (lower case) */
    const char *constant;   /* module constant (upper case) */
    int option;             /* ZMQ_* */
    int type;               /* OPT_* */
    int access;             /* ACC_*: libzmq can get (R) / set (W) it */
} sockopt_def;

/* attr, CONSTANT, ZMQ option, type, access. Write-only int options keep a
 * shadow of the value set through this object so that they read back. */
#define SOCKOPTS(X) \
    X(affinity, AFFINITY, ZMQ_AFFINITY, OPT_INT64, ACC_RW) \
    X(routing_id, ROUTING_ID, ZMQ_ROUTING_ID, OPT_BYTES, ACC_RW) \
    X(identity, IDENTITY, ZMQ_IDENTITY, OPT_BYTES, ACC_RW) \
    X(subscribe, SUBSCRIBE, ZMQ_SUBSCRIBE, OPT_BYTES, ACC_W) \
    X(unsubscribe, UNSUBSCRIBE, ZMQ_UNSUBSCRIBE, OPT_BYTES, ACC_W) \
    X(rate, RATE, ZMQ_RATE, OPT_INT, ACC_RW) \
    X(recovery_ivl, RECOVERY_IVL, ZMQ_RECOVERY_IVL, OPT_INT, ACC_RW) \
    X(sndbuf, SNDBUF, ZMQ_SNDBUF, OPT_INT, ACC_RW) \
    X(rcvbuf, RCVBUF, ZMQ_RCVBUF, OPT_INT, ACC_RW) \
    X(rcvmore, RCVMORE, ZMQ_RCVMORE, OPT_INT, ACC_R) \
    X(fd, FD, ZMQ_FD, OPT_INT, ACC_R) \
    X(events, EVENTS, ZMQ_EVENTS, OPT_INT, ACC_R) \
    X(type, TYPE, ZMQ_TYPE, OPT_INT, ACC_R) \
    X(linger, LINGER, ZMQ_LINGER, OPT_INT, ACC_RW) \
    X(reconnect_ivl, RECONNECT_IVL, ZMQ_RECONNECT_IVL, OPT_INT, ACC_RW) \
    X(backlog, BACKLOG, ZMQ_BACKLOG, OPT_INT, ACC_RW) \
    X(reconnect_ivl_max, RECONNECT_IVL_MAX, ZMQ_RECONNECT_IVL_MAX, OPT_INT, ACC_RW) \
    X(maxmsgsize, MAXMSGSIZE, ZMQ_MAXMSGSIZE, OPT_INT64, ACC_RW) \
    X(sndhwm, SNDHWM, ZMQ_SNDHWM, OPT_INT, ACC_RW) \
    X(rcvhwm, RCVHWM, ZMQ_RCVHWM, OPT_INT, ACC_RW) \
    X(multicast_hops, MULTICAST_HOPS, ZMQ_MULTICAST_HOPS, OPT_INT, ACC_RW) \
    X(rcvtimeo, RCVTIMEO, ZMQ_RCVTIMEO, OPT_INT, ACC_RW) \
    X(sndtimeo, SNDTIMEO, ZMQ_SNDTIMEO, OPT_INT, ACC_RW) \
    X(last_endpoint, LAST_ENDPOINT, ZMQ_LAST_ENDPOINT, OPT_STR, ACC_R) \
    X(router_mandatory, ROUTER_MANDATORY, ZMQ_ROUTER_MANDATORY, OPT_INT, ACC_W) \
    X(tcp_keepalive, TCP_KEEPALIVE, ZMQ_TCP_KEEPALIVE, OPT_INT, ACC_RW) \
    X(tcp_keepalive_cnt, TCP_KEEPALIVE_CNT, ZMQ_TCP_KEEPALIVE_CNT, OPT_INT, ACC_RW) \
    X(tcp_keepalive_idle, TCP_KEEPALIVE_IDLE, ZMQ_TCP_KEEPALIVE_IDLE, OPT_INT, ACC_RW) \
    X(tcp_keepalive_intvl, TCP_KEEPALIVE_INTVL, ZMQ_TCP_KEEPALIVE_INTVL, OPT_INT, ACC_RW) \
    X(immediate, IMMEDIATE, ZMQ_IMMEDIATE, OPT_INT, ACC_RW) \
    X(xpub_verbose, XPUB_VERBOSE, ZMQ_XPUB_VERBOSE, OPT_INT, ACC_W) \
    X(router_raw, ROUTER_RAW, ZMQ_ROUTER_RAW, OPT_INT, ACC_W) \
    X(ipv6, IPV6, ZMQ_IPV6, OPT_INT, ACC_RW) \
    X(mechanism, MECHANISM, ZMQ_MECHANISM, OPT_INT, ACC_R) \
    X(plain_server, PLAIN_SERVER, ZMQ_PLAIN_SERVER, OPT_INT, ACC_RW) \
    X(plain_username, PLAIN_USERNAME, ZMQ_PLAIN_USERNAME, OPT_STR, ACC_RW) \
    X(plain_password, PLAIN_PASSWORD, ZMQ_PLAIN_PASSWORD, OPT_STR, ACC_RW) \
    X(curve_server, CURVE_SERVER, ZMQ_CURVE_SERVER, OPT_INT, ACC_RW) \
    X(curve_publickey, CURVE_PUBLICKEY, ZMQ_CURVE_PUBLICKEY, OPT_KEY, ACC_RW) \
    X(curve_secretkey, CURVE_SECRETKEY, ZMQ_CURVE_SECRETKEY, OPT_KEY, ACC_RW) \
    X(curve_serverkey, CURVE_SERVERKEY, ZMQ_CURVE_SERVERKEY, OPT_KEY, ACC_RW) \
    X(probe_router, PROBE_ROUTER, ZMQ_PROBE_ROUTER, OPT_INT, ACC_W) \
    X(req_correlate, REQ_CORRELATE, ZMQ_REQ_CORRELATE, OPT_INT, ACC_W) \
    X(req_relaxed, REQ_RELAXED, ZMQ_REQ_RELAXED, OPT_INT, ACC_W) \
    X(conflate, CONFLATE, ZMQ_CONFLATE, OPT_INT, ACC_RW) \
    X(zap_domain, ZAP_DOMAIN, ZMQ_ZAP_DOMAIN, OPT_STR, ACC_RW) \
    X(router_handover, ROUTER_HANDOVER, ZMQ_ROUTER_HANDOVER, OPT_INT, ACC_W) \
    X(tos, TOS, ZMQ_TOS, OPT_INT, ACC_RW) \
    X(connect_routing_id, CONNECT_ROUTING_ID, ZMQ_CONNECT_ROUTING_ID, OPT_BYTES, ACC_W) \
    X(handshake_ivl, HANDSHAKE_IVL, ZMQ_HANDSHAKE_IVL, OPT_INT, ACC_RW) \
    X(socks_proxy, SOCKS_PROXY, ZMQ_SOCKS_PROXY, OPT_STR, ACC_RW) \
    X(xpub_nodrop, XPUB_NODROP, ZMQ_XPUB_NODROP, OPT_INT, ACC_W) \
    X(xpub_manual, XPUB_MANUAL, ZMQ_XPUB_MANUAL, OPT_INT, ACC_W) \
    X(xpub_welcome_msg, XPUB_WELCOME_MSG, ZMQ_XPUB_WELCOME_MSG, OPT_BYTES, ACC_W) \
    X(stream_notify, STREAM_NOTIFY, ZMQ_STREAM_NOTIFY, OPT_INT, ACC_W) \
    X(invert_matching, INVERT_MATCHING, ZMQ_INVERT_MATCHING, OPT_INT, ACC_RW) \
    X(heartbeat_ivl, HEARTBEAT_IVL, ZMQ_HEARTBEAT_IVL, OPT_INT, ACC_RW) \
    X(heartbeat_ttl, HEARTBEAT_TTL, ZMQ_HEARTBEAT_TTL, OPT_INT, ACC_RW) \
    X(heartbeat_timeout, HEARTBEAT_TIMEOUT, ZMQ_HEARTBEAT_TIMEOUT, OPT_INT, ACC_RW) \
    X(xpub_verboser, XPUB_VERBOSER, ZMQ_XPUB_VERBOSER, OPT_INT, ACC_W) \
    X(connect_timeout, CONNECT_TIMEOUT, ZMQ_CONNECT_TIMEOUT, OPT_INT, ACC_RW) \
    X(tcp_maxrt, TCP_MAXRT, ZMQ_TCP_MAXRT, OPT_INT, ACC_RW) \
    X(thread_safe, THREAD_SAFE, ZMQ_THREAD_SAFE, OPT_INT, ACC_R) \
    X(multicast_maxtpdu, MULTICAST_MAXTPDU, ZMQ_MULTICAST_MAXTPDU, OPT_INT, ACC_RW) \
    X(use_fd, USE_FD, ZMQ_USE_FD, OPT_INT, ACC_RW) \
    X(bindtodevice, BINDTODEVICE, ZMQ_BINDTODEVICE, OPT_STR, ACC_RW)

enum {
#define X(attr, CONST, opt, type, acc) OPTIDX_##attr,
    SOCKOPTS(X)
#undef X
    N_SOCKOPTS
};

extern const sockopt_def sockopt_table[N_SOCKOPTS];

/* Attribute getter/setter of one option; closure is its sockopt_def. */
PyObject *sockopt_attr_get(PyObject *sock, void *closure);
int sockopt_attr_set(PyObject *sock, PyObject *value, void *closure);

/* Socket.setsockopt/set and getsockopt/get. */
PyObject *sockopt_setsockopt(PyObject *sock, PyObject *const *args, Py_ssize_t nargs);
PyObject *sockopt_getsockopt(PyObject *sock, PyObject *option);

/* Add the option constants and the kind/flag/event/errno constants. */
int sockopt_init_module(PyObject *module);

#endif
