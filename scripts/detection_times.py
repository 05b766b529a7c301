"""How long a Client with heartbeat_plugin='heartbeat' takes to fail a call
in flight to a server that dies (SIGKILL), freezes (SIGSTOP) or whose link
goes down (a relay that stops forwarding without closing). Prints the
median and worst of N runs of each (20 by default).

    PYTHONPATH=build/plain/lib python scripts/detection_times.py [RUNS] [INTERVAL]

The server and the relay are tests/fault_peer.py in subprocesses.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import gevent

import pseud
from pseud.interfaces import PeerGoneError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, 'tests', 'fault_peer.py')


def spawn(*argv):
    return subprocess.Popen([sys.executable, PEER] + [str(a) for a in argv],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def first_line(proc):
    # the peer prints its line at once; reading it blocks this process
    # briefly, before any call is in flight
    return json.loads(proc.stdout.readline())


def one_run(fault, n, interval):
    options = {'heartbeat_plugin': 'heartbeat', 'heartbeat_interval': interval}
    user_id = 'detect-%d-%d' % (os.getpid(), n)
    server = spawn('server', user_id, json.dumps(options))
    relay = None
    try:
        endpoint = first_line(server)['endpoint']
        if fault == 'link_down':
            relay = spawn('relay', endpoint.rsplit(':', 1)[1])
            endpoint = 'tcp://127.0.0.1:%d' % first_line(relay)['port']
        client = pseud.Client(user_id, timeout=60, **options)
        client.connect(endpoint)
        try:
            client.echo(1).get(timeout=10)
            call = client.sleep(60)
            gevent.sleep(0.2)
            if fault == 'kill':
                server.send_signal(signal.SIGKILL)
            elif fault == 'freeze':
                server.send_signal(signal.SIGSTOP)
            else:
                relay.stdin.write('block\n')
                relay.stdin.flush()
                first_line(relay)
            t0 = time.monotonic()
            try:
                call.get(timeout=60)
            except PeerGoneError:
                return time.monotonic() - t0
            raise AssertionError('the call did not fail with PeerGoneError')
        finally:
            client.stop()
    finally:
        for proc in (server, relay):
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    print('heartbeat_interval %.2f s, bound 2 intervals + 0.5 s = %.2f s, %d runs each'
          % (interval, 2 * interval + 0.5, runs))
    for fault in ('kill', 'freeze', 'link_down'):
        times = [one_run(fault, n, interval) for n in range(runs)]
        print('%-10s median %.3f s  worst %.3f s  best %.3f s'
              % (fault, statistics.median(times), max(times), min(times)))


if __name__ == '__main__':
    main()
