"""Instructions per call, client and server, under callgrind (noise-free).

    python bench/callgrind_calls.py [--calls N] [--mode pipelined|sequential]

Runs one server process and one client process, each under
``valgrind --tool=callgrind``, twice: with N and with 2N calls (echo of 30
bytes; pipelined: 100 in flight). The difference of the two runs' totals,
divided by N, is the cost of one call with start-up and shutdown cancelled
out. Prints instructions per call for each side; with --keep DIR the
callgrind files of both runs are kept there (callgrind.MODE.SIDE.n and .2n),
for bench/callgrind_diff.py, which prints the per-call profile."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PAYLOAD = b'x' * 30
IN_FLIGHT = 100


def serve():
    import pseud
    import gevent
    server = pseud.Server(b'bench', timeout=30)
    server.register_rpc(name='echo')(lambda data: data)
    endpoint = server.bind('tcp://127.0.0.1:*')
    server.start()
    sys.stdout.write(endpoint + '\n')
    sys.stdout.flush()
    # Serve until the driver closes stdin.
    from gevent.os import tp_read
    while tp_read(0, 1):
        pass
    server.stop()


def call(endpoint, calls, mode):
    import pseud
    client = pseud.Client(b'bench', timeout=30)
    client.connect(endpoint)
    client.start()
    # Warm up (connection, first-call paths) the same way in every run.
    for _ in range(IN_FLIGHT):
        assert client.echo(PAYLOAD).get() == PAYLOAD
    done = 0
    if mode == 'pipelined':
        while done < calls:
            futures = [client.echo(PAYLOAD) for _ in range(IN_FLIGHT)]
            for f in futures:
                if f.get() != PAYLOAD:
                    raise AssertionError('wrong echo')
            done += IN_FLIGHT
    else:
        while done < calls:
            if client.echo(PAYLOAD).get() != PAYLOAD:
                raise AssertionError('wrong echo')
            done += 1
    client.stop()


def total_ir(path):
    with open(path) as f:
        for line in f:
            m = re.match(r'(?:summary|totals): (\d+)', line)
            if m:
                return int(m.group(1))
    raise RuntimeError('no totals in ' + path)


def run_pair(calls, mode, workdir):
    vg = ['valgrind', '--tool=callgrind', '--quiet']
    srv_out = os.path.join(workdir, 'server.%d.out' % calls)
    cli_out = os.path.join(workdir, 'client.%d.out' % calls)
    me = os.path.abspath(__file__)
    server = subprocess.Popen(
        vg + ['--callgrind-out-file=' + srv_out, sys.executable, me, '_serve'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        subprocess.run(vg + ['--callgrind-out-file=' + cli_out, sys.executable, me,
                             '_call', endpoint, str(calls), mode], check=True)
    finally:
        server.stdin.close()
        server.wait(timeout=300)
    return total_ir(srv_out), total_ir(cli_out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '_serve':
        return serve()
    if len(sys.argv) > 1 and sys.argv[1] == '_call':
        return call(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--calls', type=int, default=20000)
    ap.add_argument('--mode', choices=('pipelined', 'sequential'), default='pipelined')
    ap.add_argument('--keep', help='directory for the 2N run\'s callgrind files')
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix='pseud-callgrind-')
    try:
        s1, c1 = run_pair(args.calls, args.mode, workdir)
        s2, c2 = run_pair(2 * args.calls, args.mode, workdir)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for side in ('server', 'client'):
                for n, tag in ((args.calls, 'n'), (2 * args.calls, '2n')):
                    shutil.copy(os.path.join(workdir, '%s.%d.out' % (side, n)),
                                os.path.join(args.keep, 'callgrind.%s.%s.%s'
                                             % (args.mode, side, tag)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n = args.calls
    print('%s, %d vs %d calls: server %.0f Ir/call, client %.0f Ir/call'
          % (args.mode, n, 2 * n, (s2 - s1) / n, (c2 - c1) / n))


if __name__ == '__main__':
    main()
