"""Tests of pseud.packer: msgpack encoding/decoding, ext types, hostile input."""
import datetime
import enum
import os
import pickle
import random
import struct
import subprocess
import sys
import textwrap
import time
import zoneinfo

import msgpack
import pytest

from pseud import _pseud
from pseud.packer import ExtType, Packer


@pytest.fixture
def packer():
    return Packer()


def roundtrip(packer, obj):
    return packer.unpackb(packer.packb(obj))


# --------------------------------------------------------------------------
# round trips and wire compatibility


SIMPLE = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32,
    -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1,
    -2**63, 2**63 - 1, 2**63, 2**64 - 1,
    0.0, -0.0, 1.5, -2.25, 1e300, float('inf'), float('-inf'),
    '', 'a', 'héllo wörld ✓', 'x' * 31, 'x' * 32, 'x' * 255, 'x' * 256, 'y' * 70000,
    b'', b'\x00\xff', b'z' * 255, b'z' * 256, b'z' * 70000,
]


@pytest.mark.parametrize('value', SIMPLE, ids=repr)
def test_simple_roundtrip_and_matches_msgpack_python(packer, value):
    data = packer.packb(value)
    assert data == msgpack.packb(value, use_bin_type=True)
    out = packer.unpackb(data)
    assert out == value
    assert type(out) is type(value)


def test_nan_roundtrip(packer):
    out = roundtrip(packer, float('nan'))
    assert out != out


def test_int_out_of_range(packer):
    with pytest.raises(OverflowError, match='2\\*\\*64'):
        packer.packb(2**64)
    with pytest.raises(OverflowError):
        packer.packb(-2**63 - 1)
    with pytest.raises(OverflowError):
        packer.packb([1, 2**100])


def test_containers(packer):
    value = (1, (2, (3, ())), [], {}, {'a': [1, {'b': None}]})
    out = roundtrip(packer, value)
    # arrays come back as tuples
    assert out == (1, (2, (3, ())), (), {}, {'a': (1, {'b': None})})
    assert roundtrip(packer, []) == ()
    assert roundtrip(packer, ()) == ()
    assert roundtrip(packer, {}) == {}
    big = list(range(70000))
    assert roundtrip(packer, big) == tuple(big)
    bigmap = {i: str(i) for i in range(70000)}
    assert roundtrip(packer, bigmap) == bigmap


def test_dict_keys_of_any_hashable_type(packer):
    value = {1: 'int', -5: 'neg', (1, 'a'): 'tuple', b'raw': 'bytes', 'raw': 'str',
             None: 'none', 1.5: 'float', ((1, 2), (3,)): 'nested'}
    out = roundtrip(packer, value)
    assert out == value
    assert out[b'raw'] == 'bytes' and out['raw'] == 'str'


def test_str_and_bytes_stay_distinct(packer):
    out = roundtrip(packer, ['abc', b'abc'])
    assert out == ('abc', b'abc')
    assert type(out[0]) is str and type(out[1]) is bytes


def test_bytes_like(packer):
    assert roundtrip(packer, bytearray(b'ab')) == b'ab'
    assert roundtrip(packer, memoryview(b'abcd')[1:3]) == b'bc'
    strided = memoryview(b'abcdef')[::2]
    assert roundtrip(packer, strided) == b'ace'
    released = memoryview(b'x')
    released.release()
    with pytest.raises(ValueError):
        packer.packb(released)


def test_subclasses_pack_as_base(packer):
    class Color(enum.IntEnum):
        RED = 3

    class MyStr(str):
        pass

    class MyDict(dict):
        pass

    class MyList(list):
        pass

    class MyFloat(float):
        pass

    class MyBytes(bytes):
        pass

    out = roundtrip(packer, [Color.RED, MyStr('s'), MyDict(a=1), MyList([1]),
                             MyFloat(0.5), MyBytes(b'b')])
    assert out == (3, 's', {'a': 1}, (1,), 0.5, b'b')
    assert type(out[0]) is int and type(out[1]) is str
    assert packer.packb(Color.RED) == packer.packb(3)
    assert packer.packb(True) == b'\xc3'  # bool checked before int


def test_unencodable_str(packer):
    with pytest.raises(UnicodeEncodeError):
        packer.packb('bad \ud800 surrogate')


def test_reads_msgpack_python_output(packer):
    value = {'a': [1, -1, 2**64 - 1, -2**63, 1.25, None, True, b'bin', 'str'],
             'n': {'deep': [[[]]]}, 'e': msgpack.ExtType(5, b'hello')}
    data = msgpack.packb(value, use_bin_type=True)
    out = packer.unpackb(data)
    assert out['a'] == (1, -1, 2**64 - 1, -2**63, 1.25, None, True, b'bin', 'str')
    assert out['n'] == {'deep': (((),),)}
    assert out['e'] == ExtType(5, b'hello')
    assert isinstance(out['e'], ExtType)


def test_float32_is_read(packer):
    assert packer.unpackb(b'\xca' + struct.pack('>f', 1.5)) == 1.5
    assert packer.unpackb(msgpack.packb(0.25, use_single_float=True)) == 0.25


@pytest.mark.parametrize('size', [0, 1, 2, 3, 4, 5, 8, 16, 17, 255, 256, 65536])
def test_ext_type_all_sizes_both_ways(packer, size):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    for code in (-128, -1, 0, 5, 127):
        ours = packer.packb(ExtType(code, data))
        # msgpack-python only builds codes 0..127; the code is one byte
        # right before the data in every ext encoding
        theirs = msgpack.packb(msgpack.ExtType(abs(code) % 128, data))
        pos = len(theirs) - size - 1
        assert ours == theirs[:pos] + struct.pack('b', code) + theirs[pos + 1:]
        out = packer.unpackb(ours)
        assert out == ExtType(code, data) and isinstance(out, ExtType)


def test_timestamp_ext_comes_back_as_exttype(packer):
    data = msgpack.packb(msgpack.Timestamp(1, 0))
    assert packer.unpackb(data) == ExtType(-1, b'\x00\x00\x00\x01')


def test_exttype_validation(packer):
    with pytest.raises(ValueError):
        packer.packb(ExtType(128, b''))
    with pytest.raises(TypeError):
        packer.packb(ExtType(1, 'not bytes'))
    assert _pseud.ExtType is ExtType


def test_unknown_type(packer):
    class Foo:
        pass

    with pytest.raises(TypeError, match='Unknown type'):
        packer.packb(Foo())
    with pytest.raises(TypeError, match='Unknown type'):
        packer.packb({1, 2})


def test_packb_and_unpackb_accept_buffers(packer):
    data = packer.packb({'a': 1})
    assert packer.unpackb(bytearray(data)) == {'a': 1}
    assert packer.unpackb(memoryview(data)) == {'a': 1}
    with pytest.raises(TypeError):
        packer.unpackb('not bytes')


# --------------------------------------------------------------------------
# datetime ext types


DATETIMES = [
    datetime.datetime(2020, 2, 29, 23, 59, 59, 999999),
    datetime.datetime(2021, 6, 1, 12, 0, tzinfo=datetime.timezone.utc),
    datetime.datetime(2021, 6, 1, 12, 0,
                      tzinfo=datetime.timezone(datetime.timedelta(hours=-3), 'X')),
    datetime.datetime(2021, 6, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo('Europe/Paris')),
    datetime.date(1999, 12, 31),
    datetime.timedelta(days=-3, seconds=5, microseconds=7),
    datetime.timezone.utc,
    datetime.timezone(datetime.timedelta(minutes=90)),
]


@pytest.mark.parametrize('value', DATETIMES, ids=repr)
def test_datetime_roundtrip(packer, value):
    out = roundtrip(packer, value)
    assert out == value
    assert type(out) is type(value)
    if isinstance(value, datetime.datetime):
        assert out.tzinfo == value.tzinfo


def test_datetime_codes_and_upstream_wire_format(packer):
    expect = [(datetime.datetime(2000, 1, 1), 125), (datetime.date(2000, 1, 1), 126),
              (datetime.timedelta(1), 124), (datetime.timezone.utc, 123)]
    for value, code in expect:
        raw = msgpack.unpackb(packer.packb(value))
        assert raw.code == code
        # what an upstream pseud peer does with it
        assert pickle.loads(raw.data) == value


def test_default_table(packer):
    table = packer.translation_table
    assert isinstance(table, dict)
    assert sorted(table) == [123, 124, 125, 126]
    assert table[125][0] is datetime.datetime
    assert table[126][0] is datetime.date
    assert table[125][1](datetime.date(2000, 1, 1)) == pickle.dumps(
        datetime.date(2000, 1, 1), protocol=pickle.HIGHEST_PROTOCOL)


def test_nested_datetimes(packer):
    value = {'when': [datetime.datetime(2000, 1, 1), datetime.date(2001, 2, 3)]}
    assert roundtrip(packer, value) == {'when': (datetime.datetime(2000, 1, 1),
                                                 datetime.date(2001, 2, 3))}


def ext125(payload):
    return msgpack.packb(msgpack.ExtType(125, payload))


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def test_evil_pickle_os_system_runs_nothing(packer, tmp_path):
    target = tmp_path / 'pwned'
    evil = pickle.dumps(_Reduce(os.system, ('touch %s' % target,)))
    with pytest.raises(ValueError, match='125'):
        packer.unpackb(ext125(evil))
    assert not target.exists()
    # a datetime whose tzinfo is the payload is refused too
    nested = pickle.dumps(_Reduce(datetime.datetime,
                                  (2000, 1, 1, 0, 0, 0, 0,
                                   _Reduce(os.system, ('touch %s' % target,)))))
    with pytest.raises(ValueError):
        packer.unpackb(ext125(nested))
    assert not target.exists()


@pytest.mark.parametrize('protocol', [0, 2, 5])
def test_evil_pickle_eval_refused(packer, protocol):
    evil = pickle.dumps(_Reduce(eval, ('__import__("os").getpid()',)), protocol=protocol)
    with pytest.raises(ValueError) as info:
        packer.unpackb(ext125(evil))
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert 'refusing' in str(info.value)


def test_evil_getattr_refused(packer):
    # builtins.getattr is only honoured for ZoneInfo._unpickle
    evil = pickle.dumps(_Reduce(getattr, (datetime.datetime, '__subclasses__')))
    with pytest.raises(ValueError, match='refusing'):
        packer.unpackb(ext125(evil))


def test_pickle_of_wrong_type_refused(packer):
    with pytest.raises(ValueError, match='expected a datetime'):
        packer.unpackb(ext125(pickle.dumps(datetime.timedelta(days=1))))
    with pytest.raises(ValueError):
        packer.unpackb(ext125(pickle.dumps([1, 2, 3])))
    with pytest.raises(ValueError):
        packer.unpackb(ext125(pickle.dumps(datetime.date(2000, 1, 1))))
    with pytest.raises(ValueError):
        packer.unpackb(ext125(b'not a pickle'))
    with pytest.raises(ValueError):
        packer.unpackb(ext125(b''))


@pytest.mark.parametrize('payload', [
    b'\x80\x05r\xff\xff\xff\x7f.',                   # memo index 2**31
    b'\x80\x02p99999999999\n.',                       # text PUT, huge index
    b'\x80\x05\x8e\xff\xff\xff\xff\xff\x00\x00\x00.',  # BINBYTES8 of 1 TB
    b'\x80\x05\x8b\xff\xff\xff\x7f.',                 # LONG4 of 2 GB
    b'\x80\x05\x95\xff\xff\xff\xff\xff\xff\x00\x00.',  # FRAME
    b'\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00x.',  # BYTEARRAY8
    b'\x80\x05\x97.',                                 # NEXT_BUFFER
    b'\x80\x02P1\n.',                                 # persistent id
    b'\x80\x02\x82\x01.',                             # EXT1
])
def test_pickle_resource_bombs_refused_quickly(packer, payload):
    start = time.perf_counter()
    with pytest.raises(ValueError, match='125'):
        packer.unpackb(ext125(payload))
    assert time.perf_counter() - start < 0.5


def test_older_pickle_protocols_decode(packer):
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        for value in (datetime.datetime(2000, 1, 2, 3, 4, 5, 6,
                                        tzinfo=zoneinfo.ZoneInfo('UTC')),
                      datetime.datetime(2000, 1, 2, tzinfo=datetime.timezone.utc)):
            data = msgpack.packb(msgpack.ExtType(125, pickle.dumps(value, protocol=proto)))
            assert packer.unpackb(data) == value


# --------------------------------------------------------------------------
# translation table


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def pack_point(p):
    return struct.pack('>ii', p.x, p.y)


def unpack_point(data):
    return Point(*struct.unpack('>ii', data))


def test_custom_translation_table():
    packer = Packer({10: (Point, pack_point, unpack_point)})
    out = packer.unpackb(packer.packb({'p': [Point(1, -2)]}))
    assert out == {'p': (Point(1, -2),)}
    assert 10 in packer.translation_table and 125 in packer.translation_table
    # another packer without the entry sees an ExtType
    assert Packer().unpackb(packer.packb(Point(3, 4))) == ExtType(10, pack_point(Point(3, 4)))


def test_user_entry_replaces_default():
    def pack_date(d):
        return d.isoformat().encode()

    def unpack_date(b):
        return datetime.date.fromisoformat(b.decode())

    packer = Packer({126: (datetime.date, pack_date, unpack_date)})
    data = packer.packb(datetime.date(2000, 1, 2))
    assert msgpack.unpackb(data) == msgpack.ExtType(126, b'2000-01-02')
    assert packer.unpackb(data) == datetime.date(2000, 1, 2)


def test_lowest_code_wins():
    class Base:
        pass

    class Child(Base):
        pass

    packer = Packer({20: (Base, lambda o: b'base', lambda b: b),
                     10: (Child, lambda o: b'child', lambda b: b)})
    assert msgpack.unpackb(packer.packb(Child())) == msgpack.ExtType(10, b'child')
    assert msgpack.unpackb(packer.packb(Base())) == msgpack.ExtType(20, b'base')


def test_register_ext_handler_and_cache_invalidation(packer):
    with pytest.raises(TypeError, match='Unknown type'):
        packer.packb(Point(1, 2))          # caches "no match" for Point
    packer.register_ext_handler(11, Point, pack_point, unpack_point)
    assert packer.unpackb(packer.packb(Point(1, 2))) == Point(1, 2)
    with pytest.raises(ValueError):
        packer.register_ext_handler(11, Point, pack_point, unpack_point)
    with pytest.raises(ValueError):
        packer.register_ext_handler(125, Point, pack_point, unpack_point)
    with pytest.raises(ValueError):
        packer.register_ext_handler(200, Point, pack_point, unpack_point)
    with pytest.raises(TypeError):
        packer.register_ext_handler(12, Point, 'nope', unpack_point)


def test_translation_table_validation():
    with pytest.raises(ValueError):
        Packer({300: (Point, pack_point, unpack_point)})
    with pytest.raises(ValueError):
        Packer({1: (Point, pack_point)})
    with pytest.raises(TypeError):
        Packer({1: (42, pack_point, unpack_point)})
    with pytest.raises(ValueError):
        Packer(max_depth=-1)


def test_pack_fn_errors_propagate():
    class Boom(Exception):
        pass

    def bad_pack(obj):
        raise Boom('no')

    packer = Packer({1: (Point, bad_pack, unpack_point)})
    with pytest.raises(Boom):
        packer.packb(Point(1, 2))
    packer = Packer({1: (Point, lambda p: 'str', unpack_point)})
    with pytest.raises(TypeError, match='expected bytes'):
        packer.packb(Point(1, 2))


def test_unpack_fn_errors():
    def bad_unpack(data):
        raise KeyError('x')

    packer = Packer({1: (Point, pack_point, bad_unpack)})
    with pytest.raises(ValueError, match='ext type 1') as info:
        packer.unpackb(packer.packb(Point(1, 2)))
    assert isinstance(info.value.__cause__, KeyError)

    def interrupt(data):
        raise KeyboardInterrupt

    packer = Packer({1: (Point, pack_point, interrupt)})
    with pytest.raises(KeyboardInterrupt):
        packer.unpackb(packer.packb(Point(1, 2)))


def test_unhashable_key_is_value_error(packer):
    # a map whose key is a map
    with pytest.raises(ValueError, match='unhashable'):
        packer.unpackb(b'\x81\x80\x01')
    # a tuple key holding a map
    with pytest.raises(ValueError):
        packer.unpackb(b'\x81\x91\x80\x01')


# --------------------------------------------------------------------------
# depth


def nested_list(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def test_max_depth_pack():
    packer = Packer(max_depth=5)
    assert packer.max_depth == 5
    packer.packb(nested_list(5))
    with pytest.raises(ValueError, match='max_depth'):
        packer.packb(nested_list(6))
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match='max_depth'):
        Packer().packb(loop)
    d = {}
    d['d'] = d
    with pytest.raises(ValueError, match='max_depth'):
        Packer().packb(d)


def test_max_depth_unpack():
    data = b'\x91' * 5 + b'\x00'
    assert Packer(max_depth=5).unpackb(data) == ((((((0,),),),),),)[0]
    with pytest.raises(ValueError, match='max_depth'):
        Packer(max_depth=4).unpackb(data)
    assert Packer(max_depth=0).unpackb(b'\x05') == 5
    with pytest.raises(ValueError, match='max_depth'):
        Packer(max_depth=0).unpackb(b'\x90')
    # the default is 128
    Packer().unpackb(b'\x91' * 128 + b'\xc0')
    with pytest.raises(ValueError, match='max_depth'):
        Packer().unpackb(b'\x91' * 129 + b'\xc0')


def test_deep_nesting_is_value_error(packer):
    with pytest.raises(ValueError):
        packer.unpackb(b'\x91' * 100000)
    with pytest.raises(ValueError):
        packer.unpackb(b'\x81\x01' * 100000 + b'\x01')


# --------------------------------------------------------------------------
# hostile input


@pytest.mark.parametrize('data', [
    b'\xdd\xff\xff\xff\xff',    # array32 of 4G elements
    b'\xdb\xff\xff\xff\xff',    # str32 of 4GB
    b'\xc6\xff\xff\xff\xff',    # bin32 of 4GB
    b'\xdf\xff\xff\xff\xff',    # map32 of 4G pairs
    b'\xc9\xff\xff\xff\xff\x01',  # ext32 of 4GB
    b'\xdc\xff\xff',
    b'\xde\xff\xff\x00',
    b'\xc1',
    b'',
    b'\x00\x00',                # trailing
    b'\x90\xc0',
    b'\xa3ab',
    b'\xa2\xff\xfe',            # invalid utf-8
    b'\xa3\xed\xa0\x80',        # utf-8 encoded surrogate
    b'\x91\xc1',
    b'\xd4',
    b'\xd4\x01',
])
def test_hostile_inputs(packer, data):
    with pytest.raises(ValueError):
        packer.unpackb(data)


def test_error_messages_say_what_is_wrong(packer):
    with pytest.raises(ValueError, match='reserved byte 0xc1'):
        packer.unpackb(b'\xc1')
    with pytest.raises(msgpack.ExtraData):
        packer.unpackb(b'\x01\x02')
    with pytest.raises(ValueError, match='truncated'):
        packer.unpackb(b'\xcd\x01')
    with pytest.raises(ValueError, match='claims 4294967295 elements'):
        packer.unpackb(b'\xdd\xff\xff\xff\xff')


def big_sample():
    return {
        'ints': [0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, 2**32, -2**31 - 1,
                 -2**63, 2**64 - 1],
        'floats': [0.5, -1e300],
        'str': ['', 'a' * 31, 'b' * 32, 'c' * 300, 'd' * 70000],
        'bin': [b'', b'x' * 300, b'y' * 70000],
        'ext': [ExtType(1, b'a'), ExtType(2, b'ab'), ExtType(3, b'abcd'),
                ExtType(4, b'a' * 8), ExtType(5, b'a' * 16), ExtType(6, b'abc'),
                ExtType(7, b'z' * 300), ExtType(8, b'z' * 70000)],
        'containers': [list(range(20)), {i: i for i in range(20)},
                       list(range(70000)), {i: None for i in range(70000)}],
        'dt': datetime.datetime(2000, 1, 1),
        'consts': [None, True, False],
    }


# ~2000 decodes of a large sample: minutes under ASan on a loaded 2-core machine
@pytest.mark.timeout(300)
def test_every_truncation_is_value_error(packer):
    data = packer.packb(big_sample())
    assert packer.unpackb(data)['dt'] == datetime.datetime(2000, 1, 1)
    # every prefix: check all of the interesting (small-item) region, and a
    # stride through the long runs
    cuts = set(range(0, 2000)) | set(range(0, len(data), 997)) | {len(data) - 1}
    for cut in sorted(cuts):
        if cut >= len(data):
            continue
        with pytest.raises(ValueError):
            packer.unpackb(data[:cut])


def test_every_truncation_of_small_sample(packer):
    sample = {'a': (1, 2**40, -2**40, 1.5, 'xyz', b'q', ExtType(9, b'12345'),
                    datetime.date(2000, 1, 1), None, {(1, 2): [True]})}
    data = packer.packb(sample)
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            packer.unpackb(data[:cut])
    with pytest.raises(msgpack.ExtraData) as info:
        packer.unpackb(data + b'\x00')
    assert info.value.unpacked == packer.unpackb(data) and info.value.extra == b'\x00'


def test_trailing_data_raises_msgpack_extra_data(packer):
    # as upstream's Packer, which was msgpack's unpackb: ExtraData(unpacked,
    # extra), a ValueError subclass
    with pytest.raises(msgpack.ExtraData) as info:
        packer.unpackb(b'\x01\x02\x03')
    assert isinstance(info.value, ValueError)
    assert info.value.unpacked == 1 and info.value.extra == b'\x02\x03'
    if sys.version_info >= (3, 11):
        # msgpack's message says no more than "extra data": a note says where
        assert info.value.__notes__ == [
            'pseud: trailing data after msgpack object: 2 extra bytes at offset 1']
    with pytest.raises(msgpack.ExtraData) as info:
        Packer(translation_table={}).unpackb(memoryview(b'\x92\x01\xc0\xff'))
    assert info.value.unpacked == (1, None) and info.value.extra == b'\xff'


def _run_child(script):
    child = subprocess.run([sys.executable, '-c', textwrap.dedent(script)],
                           capture_output=True, text=True, timeout=60,
                           cwd=os.path.dirname(os.path.abspath(__file__)))
    assert child.returncode == 0, child.stderr
    return child.stdout


def test_trailing_data_without_msgpack_is_a_value_error():
    # pseud needs no msgpack: without it, a plain ValueError saying what is
    # wrong; the failed import is remembered (hostile input may repeat it)
    out = _run_child('''
        import sys
        sys.modules['msgpack'] = None
        from pseud.packer import Packer
        for _ in range(2):
            try:
                Packer().unpackb(b'--')
            except ValueError as exc:
                assert type(exc) is ValueError, type(exc)
                print(exc)
            # importable now: still the first answer
            del sys.modules['msgpack']
            import msgpack
    ''')
    assert out.splitlines() == [
        'pseud: trailing data after msgpack object: 1 extra bytes at offset 1'] * 2


def test_fuzz_unpackb_only_raises_value_or_type_error(packer):
    rng = random.Random(1234)
    seeds = [packer.packb(big_sample()['ints']), packer.packb(big_sample()['ext'][:6]),
             packer.packb({'a': [1, 2.5, 'x', b'y', None, {(1,): 2}]}),
             packer.packb(datetime.datetime(2000, 1, 1)),
             packer.packb([datetime.date(2000, 1, 1), datetime.timedelta(3)])]
    outcomes = {'ok': 0, 'error': 0}
    for i in range(4000):
        if i % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            buf = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 5)):
                op = rng.randrange(3)
                pos = rng.randrange(len(buf) + 1)
                if op == 0 and buf:
                    buf[min(pos, len(buf) - 1)] = rng.randrange(256)
                elif op == 1:
                    buf[pos:pos] = bytes([rng.randrange(256)])
                elif buf:
                    del buf[min(pos, len(buf) - 1)]
            data = bytes(buf)
        try:
            packer.unpackb(data)
            outcomes['ok'] += 1
        except (ValueError, TypeError):
            outcomes['error'] += 1
    assert outcomes['ok'] > 0 and outcomes['error'] > 0


def test_mutation_during_packing_is_safe():
    victim = [1, 2, 3, Point(0, 0), 5, 6]

    def shrinking(p):
        victim.clear()
        return b''

    packer = Packer({1: (Point, shrinking, unpack_point)})
    with pytest.raises(RuntimeError, match='changed size'):
        packer.packb(victim)

    d = {'a': Point(0, 0), 'b': 2}

    def grow(p):
        d.pop('b', None)
        return b''

    packer = Packer({1: (Point, grow, unpack_point)})
    with pytest.raises(RuntimeError):
        packer.packb(d)


def test_default_packer_in_module_state_is_usable():
    # Packer() created at import works before anything else touched it
    assert Packer().unpackb(Packer().packb(1)) == 1
    assert Packer.default_translation_table[125][0] is datetime.datetime


def _ext(code, data):
    return msgpack.packb(msgpack.ExtType(code, data))


@pytest.mark.timeout(20)
@pytest.mark.parametrize('payload', [
    # a set holding a tuple nested 300,000 deep: hashing it overflowed the C stack
    b'\x80\x04\x8f(' + b')' + b'\x85' * 300000 + b'\x90.',
    # DUP doubling a tuple 60 times: hashing it would take 2**60 steps
    b'\x80\x04\x8f(' + b')' + b'2\x86' * 60 + b'\x90.',
    # ZoneInfo keyed by a shared, doubled tuple: its cache lookup hashes the key
    (b'\x80\x04\x8c\x08zoneinfo\x8c\x08ZoneInfo\x93)' + b'2\x86' * 60
     + b'\x85R.'),
    # anything longer than a datetime pickle can be
    b'\x80\x04' + b'N0' * 1000 + b'.',
])
def test_hostile_datetime_pickles_are_refused_quickly(packer, payload):
    for code in (123, 125):
        with pytest.raises(ValueError):
            packer.unpackb(_ext(code, payload))


def test_zoneinfo_keys_must_be_plain_str(packer):
    zoneinfo = pytest.importorskip('zoneinfo')
    try:
        tz = zoneinfo.ZoneInfo('UTC')
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip('no tz database here')
    when = datetime.datetime(2020, 1, 1, tzinfo=tz)
    assert packer.unpackb(packer.packb(when)) == when
    tuple_key = b'\x80\x04\x8c\x08zoneinfo\x8c\x08ZoneInfo\x93K\x01K\x02\x86\x85R.'
    with pytest.raises(ValueError):
        packer.unpackb(_ext(123, tuple_key))


def test_deep_input_decodes_on_a_small_stack():
    # the decoder keeps its nesting on the heap: 10000 levels (the largest
    # max_depth) fit in a thread with a 256 kB stack, as in a greenlet
    import threading
    data = b'\x91' * 9999 + b'\xc0'
    packer = Packer(max_depth=10000)
    out = []
    old = threading.stack_size(256 * 1024)
    try:
        t = threading.Thread(target=lambda: out.append(packer.unpackb(data)))
        t.start()
        t.join(30)
    finally:
        threading.stack_size(old)
    assert not t.is_alive()
    value, depth = out[0], 1
    while value != (None,):
        value, depth = value[0], depth + 1
    assert depth == 9999
    with pytest.raises(ValueError, match='max_depth'):
        Packer(max_depth=9998).unpackb(data)


# Inputs the libFuzzer harnesses found (fuzz/run.sh): each in
# tests/fuzz_regressions/ as the harness read it.
REGRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fuzz_regressions')


def test_fuzz_regression_pickle_opcode_past_its_frame(packer):
    # fuzz_datetime: a tzfile datetime pickle whose FRAME ends inside a
    # BININT; _pickle, reading from a file, then took the BININT's last
    # bytes for a LONG_BINPUT of index 2.4e9 and asked for 38 GB
    with open(os.path.join(REGRESSIONS, 'datetime-frame-straddle'), 'rb') as f:
        data = f.read()
    code, pickled = 123 + data[0] % 4, data[1:]
    start = time.perf_counter()
    with pytest.raises(ValueError, match='past the end of its frame'):
        packer.unpackb(msgpack.packb(msgpack.ExtType(code, pickled)))
    assert time.perf_counter() - start < 0.5
    # the smallest case: a 2-byte frame, then a BININT needing 4
    with pytest.raises(ValueError, match='past the end of its frame'):
        packer.unpackb(ext125(b'\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00'
                              b'J\x01\x02\x03\x04.'))
    # a frame inside a frame
    with pytest.raises(ValueError, match='frame inside a frame'):
        packer.unpackb(ext125(b'\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00'
                              b'\x95\x01\x00\x00\x00\x00\x00\x00\x00N.'))
