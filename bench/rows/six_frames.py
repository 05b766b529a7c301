"""The pseud v1 six-frame exchange done by hand (shared by raw rows in
Python): ``[routing_id, b'', b'v1', uuid, type, body]``."""
import msgpack

VERSION = b'v1'
WORK = b'\x03'
OK = b'\x01'


def work(peer, uuid, payload):
    return [peer, b'', VERSION, uuid, WORK, msgpack.packb(('echo', (payload,), {}))]


def reply_to(frames):
    """The OK reply to a WORK message, or None for anything else."""
    if len(frames) != 6 or frames[4] != WORK:
        return None
    name, args, kwargs = msgpack.unpackb(frames[5])
    return [frames[0], b'', VERSION, frames[3], OK, msgpack.packb(args[0])]


def result(frames):
    return frames[3], msgpack.unpackb(frames[5])
