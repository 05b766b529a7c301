"""A TCP port free on 127.0.0.1 right now, for the ported tests that named a
fixed one (PORTING.md): no two tests, and no parallel run, share a port."""
import socket


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
