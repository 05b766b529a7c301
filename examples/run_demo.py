"""Start examples/server.py and examples/client.py together and show what
the client gets. The server binds a free loopback port and says which."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'server.py'), 'tcp://127.0.0.1:*'],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith('server listening on '):
            sys.exit('demo: the server did not start (%r)' % line)
        endpoint = line.split()[-1]
        print(line.strip())
        rc = subprocess.call([sys.executable, os.path.join(HERE, 'client.py'),
                              endpoint], timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print('demo: %s' % ('ok' if rc == 0 else 'FAILED'))
    sys.exit(rc)


if __name__ == '__main__':
    main()
