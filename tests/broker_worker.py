"""A worker process for tests/test_broker.py: a Server of SERVICE that
serves through the broker at BACKEND until killed.

    python broker_worker.py BACKEND SERVICE

Prints one line, "ready <pid>", once connected. Its handlers:
pid(), block(seconds) (time.sleep: holds the whole process, as a
CPU-bound handler would), nap(seconds) (gevent.sleep), whoami() (the
caller's user id, with_identity).
"""
import os
import sys
import time

import gevent

import pseud


def main(backend, service):
    server = pseud.Server(service)
    reg = server.register_rpc
    reg(name='pid')(os.getpid)

    @reg(name='block')
    def block(seconds):
        time.sleep(seconds)
        return os.getpid()

    @reg(name='nap')
    def nap(seconds):
        gevent.sleep(seconds)
        return os.getpid()

    reg(name='whoami', with_identity=True)(lambda user_id: user_id)
    server.connect_broker(backend)
    server.start()
    print('ready %d' % os.getpid(), flush=True)
    gevent.wait()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
