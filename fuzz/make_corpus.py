"""Write the seed corpora of the libFuzzer harnesses into fuzz/corpus/.

Usage: .venv-interop/bin/python fuzz/make_corpus.py   (from the repository root)
       (any python with upstream pseud 1.0.1 and msgpack: the interop venv)

The bodies are packed by upstream pseud 1.0.1's Packer, so the datetime
seeds are the pickles upstream really sends (protocol 5, its
HIGHEST_PROTOCOL on Python 3.8+), plus the older protocols (2-4) that
older upstream peers sent. Frames are encoded as fuzz/frames.h reads them.
"""
import datetime
import hashlib
import os
import pickle
import sys

import msgpack

import pseud.packer as upstream_packer

HERE = os.path.dirname(os.path.abspath(__file__))


def _packb(obj, encoding=None, **kwargs):
    # upstream 1.0.1 passes encoding=, which msgpack 1.0 removed (see
    # tests/interop/upstream_peer.py): str is packed as utf-8 anyway
    return _real_packb(obj, **kwargs)


_real_packb = msgpack.packb
upstream_packer.msgpack.packb = _packb
PACKER = upstream_packer.Packer()


def frames(*parts):
    """One fuzz input: each frame as a length (one byte, or 0xff + two
    bytes little-endian) then its bytes (see fuzz/frames.h)."""
    out = bytearray()
    for part in parts:
        if len(part) < 0xff:
            out.append(len(part))
        else:
            out += b'\xff' + len(part).to_bytes(2, 'little')
        out += part
    return bytes(out)


def datetime_values():
    from dateutil import tz as dtz
    import pytz
    import zoneinfo
    values = [
        datetime.datetime(2020, 2, 29, 12, 30, 45, 123456),
        datetime.datetime(2020, 2, 29, 12, 30, tzinfo=datetime.timezone.utc),
        datetime.datetime(1999, 12, 31, 23, 59,
                          tzinfo=datetime.timezone(datetime.timedelta(hours=-5), 'EST')),
        datetime.date(2000, 1, 1),
        datetime.timedelta(days=-3, seconds=5, microseconds=7),
        datetime.timezone.utc,
        datetime.timezone(datetime.timedelta(minutes=330)),
        datetime.datetime(2021, 6, 1, tzinfo=dtz.tzutc()),
        datetime.datetime(2021, 6, 1, tzinfo=dtz.tzoffset('X', 3600)),
        datetime.datetime(2021, 6, 1, tzinfo=dtz.tzlocal()),
        datetime.datetime(2021, 6, 1, tzinfo=dtz.gettz('Europe/Paris')),
        pytz.timezone('America/New_York').localize(datetime.datetime(2021, 11, 7, 1, 30)),
        datetime.datetime(2021, 6, 1, tzinfo=pytz.utc),
        datetime.datetime(2021, 6, 1, tzinfo=zoneinfo.ZoneInfo('Asia/Tokyo')),
        dtz.tzutc(),
        pytz.timezone('Europe/London'),
    ]
    return values


def dateutil2_seeds():
    """(name, ext code, pickle) of what dateutil 2.x peers send, as
    tests/tz_pickles/make.sh recorded it from python-dateutil 2.9 (Python
    2.7 at protocol 2, Python 3 at 5), and a hostile variant: its tzfile
    called with a file name, which the real class would read."""
    d = os.path.join(HERE, '..', 'tests', 'tz_pickles')
    for name, code in (('dateutil-2.9.0.post0-py2.7-p2-datetime.pickle', 125),
                       ('dateutil-2.9.0-py3.11-p5-datetime.pickle', 125),
                       ('dateutil-2.9.0-py3.11-p5-tzinfo.pickle', 123)):
        with open(os.path.join(d, name), 'rb') as f:
            yield 'dateutil2-' + name.split('-', 2)[2][:-len('.pickle')], code, f.read()
    yield ('dateutil2-tzfile-reads-a-file', 123,
           b'\x80\x02cdateutil.tz.tz\ntzfile\nX\x0b\x00\x00\x00/etc/passwdN\x86R.')


def ext_of(obj):
    """(code, pickle) as upstream's Packer makes it."""
    return PACKER.ext_type_pack_hook(obj)


def write(harness, name, data):
    d = os.path.join(HERE, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, '%s-%s' % (name, digest)), 'wb') as f:
        f.write(data)


def main():
    V1, U = b'v1', b'0123456789abcdef'
    OK, HELLO, WORK, AUTH, HB, ERROR, UNAUTH = (bytes([t]) for t in (1, 2, 3, 4, 6, 0x10, 0x11))
    dt_values = datetime_values()
    bodies = {
        'work': PACKER.packb(('echo', ('x', 1, 2.5, None, True, b'b'), {'k': [1, 2]})),
        'work-nokw': PACKER.packb(('a.b.c', (), {})),
        'work-dates': PACKER.packb(('when', tuple(dt_values[:5]), {'tz': dt_values[7]})),
        'ok': PACKER.packb({'result': [1, -1, 2 ** 64 - 1, -2 ** 63, 'é', b'\0' * 300]}),
        'ok-date': PACKER.packb(dt_values[1]),
        'error': PACKER.packb(('ValueError', 'bad value', 'Traceback (most recent call last):\n')),
        'error-custom': PACKER.packb(('ServiceNotFoundError', 'nope', '')),
        'hello': PACKER.packb(('login', 'password')),
        'empty': b'',
    }
    # --- unpack: bodies alone
    for name, body in bodies.items():
        if body:
            write('unpack', name, body)
    write('unpack', 'ext', PACKER.packb([msgpack.ExtType(5, b'abc'), {(1, 2): {b'k': 'v'}}]))
    write('unpack', 'nested', PACKER.packb([[[[{'a': [1]}]]]] * 3))
    # --- datetime: one byte (the ext code - 123) then the pickle
    for i, value in enumerate(dt_values):
        ext = ext_of(value)
        write('datetime', 'upstream-%02d' % i, bytes([ext.code - 123]) + ext.data)
        for proto in (2, 3, 4):
            write('datetime', 'proto%d-%02d' % (proto, i),
                  bytes([ext.code - 123]) + pickle.dumps(value, protocol=proto))
    for name, code, data in dateutil2_seeds():
        write('datetime', name, bytes([code - 123]) + data)
    # --- wire and message: whole multipart messages as the server's ROUTER
    # hands them over (routing id first)
    rid = b'\x00k\x8bEg'
    messages = {
        'work': [rid, b'', V1, U, WORK, bodies['work']],
        'work-nokw': [rid, b'', V1, U, WORK, bodies['work-nokw']],
        'work-dates': [rid, b'', V1, U, WORK, bodies['work-dates']],
        'ok': [rid, b'', V1, U, OK, bodies['ok']],
        'ok-date': [rid, b'', V1, U, OK, bodies['ok-date']],
        'error': [rid, b'', V1, U, ERROR, bodies['error']],
        'error-custom': [rid, b'', V1, U, ERROR, bodies['error-custom']],
        'hello': [rid, b'', V1, U, HELLO, bodies['hello']],
        'authenticated': [rid, b'', V1, U, AUTH, b''],
        'unauthorized': [rid, b'', V1, U, UNAUTH, b''],
        'heartbeat': [rid, b'', V1, b'', HB, b''],
        'probe': [rid, b''],
        'uuid-64': [rid, b'', V1, b'u' * 64, WORK, bodies['work-nokw']],
        'bad-version': [rid, b'', b'v2', U, WORK, bodies['work']],
        'seven': [rid, b'', V1, U, WORK, bodies['work'], b'extra'],
    }
    for name, parts in messages.items():
        write('wire', name, frames(*parts))
        write('message', name, frames(*parts))
    # --- zap: requests as libzmq sends them to inproc://zeromq.zap.01
    key = bytes(range(32))
    zaps = {
        'plain': [b'1.0', b'1', b'domain', b'127.0.0.1', b'', b'PLAIN', b'login', b'password'],
        'curve': [b'1.0', b'2', b'domain', b'127.0.0.1', b'', b'CURVE', key],
        'null': [b'1.0', b'3', b'', b'127.0.0.1', b'', b'NULL'],
        'bad-version': [b'2.0', b'4', b'domain', b'127.0.0.1', b'', b'PLAIN', b'a', b'b'],
    }
    for name, parts in zaps.items():
        write('zap', name, frames(*parts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
