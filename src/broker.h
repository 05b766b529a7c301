/* The load-balancing broker (docs/guide/scaling.rst): one service id at a
 * frontend ROUTER for clients, a pool of workers at a backend ROUTER. */
#ifndef PSEUD_BROKER_H
#define PSEUD_BROKER_H

#include "module.h"

/* Add the _pseud.Broker type to the module (module exec). 0 / -1. */
int broker_init_module(PyObject *module);

/* The backend's routing id for a service: what a worker's socket calls its
 * broker, "pseud-broker:" + service id. */
#define BROKER_ID_PREFIX "pseud-broker:"
#define BROKER_ID_PREFIX_LEN (sizeof(BROKER_ID_PREFIX) - 1)

/* A broker's call id on the backend is 8 bytes; a worker's own call (its
 * send_to through the broker) carries 16 bytes of id then the target user
 * id in its uuid frame. */
#define BROKER_WORKER_CALL_ID 16

#endif
