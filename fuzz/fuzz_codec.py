"""Mutation fuzzer of Packer().unpackb.

Usage: python fuzz/fuzz_codec.py [N=200000] [SEED=0]

Feeds N random mutations of a few seed messages (plus pure random bytes) to
pseud.packer.Packer().unpackb. Decoding may return or raise ValueError,
TypeError or OverflowError; any other exception is reported and the script
exits with status 1. A crash or hang is, of course, a failure too.
"""
import datetime
import random
import sys

from pseud.packer import ExtType, Packer

ALLOWED = (ValueError, TypeError, OverflowError)


def seeds(packer):
    return [packer.packb(obj) for obj in (
        {'a': [1, -1, 2**64 - 1, -2**63, 1.5, None, True, 'str', b'bin']},
        [ExtType(-1, b'\0' * 4), ExtType(3, b'x' * 3), ExtType(4, b'y' * 300)],
        {(1, 2): {b'k': ('x' * 40, b'y' * 300)}},
        [datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),
         datetime.date(2000, 1, 1), datetime.timedelta(seconds=5)],
        list(range(300)),
    )]


def mutate(rng, data):
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        pos = rng.randrange(len(buf) + 1)
        op = rng.randrange(4)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        elif op == 2 and buf:
            del buf[pos:pos + rng.randrange(1, 8)]
        else:
            buf = buf[:pos]
    return bytes(buf)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    packer = Packer()
    corpus = seeds(packer)
    failures = 0
    for i in range(n):
        if i % 8 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        else:
            data = mutate(rng, rng.choice(corpus))
        try:
            packer.unpackb(data)
        except ALLOWED:
            pass
        except Exception as exc:  # noqa: BLE001 - that is what we look for
            failures += 1
            print('FAIL %r: %s: %s' % (data[:200], type(exc).__name__, exc))
    print('%d inputs, %d failures' % (n, failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
