"""Timezone-aware datetimes through the default ext types 123 (tzinfo) and
125 (datetime): dateutil, pytz, zoneinfo and datetime.timezone values round
trip through Packer and over RPC, pickles of protocols 2-5 as upstream pseud
writes them decode, and hostile pickles naming, rebuilding or BUILDing
anything outside the allowlist (docs/protocol.rst) are refused."""
import datetime
import os
import pickle
import secrets
import subprocess
import sys
import textwrap
import time

import msgpack
import pytest

from pseud.packer import Packer

dateutil_tz = pytest.importorskip('dateutil.tz')
pytz = pytest.importorskip('pytz')
zoneinfo = pytest.importorskip('zoneinfo')

from dateutil.tz import tz as dateutil_tz_tz  # noqa: E402


def _paris_zoneinfo():
    try:
        return zoneinfo.ZoneInfo('Europe/Paris')
    except zoneinfo.ZoneInfoNotFoundError:      # pragma: no cover
        pytest.skip('no tz database on this machine')


def _paris_tzfile():
    tz = dateutil_tz.gettz('Europe/Paris')
    if tz is None:                              # pragma: no cover
        pytest.skip('dateutil finds no Europe/Paris')
    return tz


PARIS = pytz.timezone('Europe/Paris')

# name -> a function making the value (some need a tz database)
TZ_VALUES = {
    'dateutil.tzutc': lambda: datetime.datetime(2020, 1, 1, tzinfo=dateutil_tz.tzutc()),
    'dateutil.tzlocal': lambda: datetime.datetime(2020, 7, 1, 12, tzinfo=dateutil_tz.tzlocal()),
    'dateutil.tzoffset': lambda: datetime.datetime(
        2020, 1, 1, 8, 30, tzinfo=dateutil_tz.tzoffset('BRST', -10800)),
    'dateutil.tzoffset-noname': lambda: datetime.datetime(
        2020, 1, 1, tzinfo=dateutil_tz.tzoffset(None, 3600 * 5 + 1800)),
    'dateutil.tzfile-summer': lambda: datetime.datetime(2020, 7, 1, 12, tzinfo=_paris_tzfile()),
    'dateutil.tzfile-winter': lambda: datetime.datetime(2020, 1, 1, 12, tzinfo=_paris_tzfile()),
    'pytz.utc': lambda: datetime.datetime(2020, 1, 1, 3, tzinfo=pytz.utc),
    'pytz.paris-summer': lambda: PARIS.localize(datetime.datetime(2020, 7, 1, 12)),
    'pytz.paris-winter': lambda: PARIS.localize(datetime.datetime(2020, 1, 1, 12)),
    'pytz.static': lambda: datetime.datetime(2020, 1, 1, tzinfo=pytz.timezone('EST')),
    'pytz.fixed': lambda: datetime.datetime(2020, 1, 1, tzinfo=pytz.FixedOffset(-90)),
    'zoneinfo': lambda: datetime.datetime(2020, 7, 1, 12, tzinfo=_paris_zoneinfo()),
    'timezone': lambda: datetime.datetime(
        2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-3), 'X')),
    'timezone.utc': lambda: datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
}


def _ext(code, data):
    return msgpack.packb(msgpack.ExtType(code, data))


def assert_same_datetime(got, want):
    assert got == want
    assert type(got) is type(want)
    assert type(got.tzinfo) is type(want.tzinfo)
    assert got.utcoffset() == want.utcoffset()
    assert got.dst() == want.dst()
    assert got.tzname() == want.tzname()
    # the zone still works one half-year later (transitions came through)
    later = got + datetime.timedelta(days=183)
    assert later.utcoffset() == (want + datetime.timedelta(days=183)).utcoffset()


@pytest.fixture
def packer():
    return Packer()


def test_issue_example_tzutc_round_trips():
    # raised "pickle opcode 0x81 is not accepted" before
    value = datetime.datetime(2020, 1, 1, tzinfo=dateutil_tz.tzutc())
    got = Packer().unpackb(Packer().packb(value))
    assert got == value
    assert got.tzinfo is dateutil_tz.tzutc()      # the singleton


@pytest.mark.parametrize('name', sorted(TZ_VALUES))
def test_packer_round_trip(packer, name):
    value = TZ_VALUES[name]()
    raw = packer.packb(value)
    # on the wire as upstream writes it: ext 125, a pickle any peer can load
    ext = msgpack.unpackb(raw)
    assert ext.code == 125
    assert pickle.loads(ext.data) == value
    assert_same_datetime(packer.unpackb(raw), value)
    # the tzinfo alone is ext 123
    tz_raw = packer.packb(value.tzinfo)
    assert msgpack.unpackb(tz_raw).code == 123
    tz = packer.unpackb(tz_raw)
    assert type(tz) is type(value.tzinfo)
    assert value.replace(tzinfo=tz).utcoffset() == value.utcoffset()


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
@pytest.mark.parametrize('name', sorted(TZ_VALUES))
def test_pickles_of_every_protocol_decode(packer, name, protocol):
    value = TZ_VALUES[name]()
    assert_same_datetime(packer.unpackb(_ext(125, pickle.dumps(value, protocol))), value)
    tz = packer.unpackb(_ext(123, pickle.dumps(value.tzinfo, protocol)))
    assert type(tz) is type(value.tzinfo)
    assert value.replace(tzinfo=tz).utcoffset() == value.utcoffset()


def test_shared_instances_stay_shared(packer):
    # pytz states and the dateutil/pytz singletons come back as the very
    # instances the receiver has: nothing is added to their caches
    summer = PARIS.localize(datetime.datetime(2020, 7, 1, 12))
    assert packer.unpackb(packer.packb(summer)).tzinfo is summer.tzinfo
    assert packer.unpackb(packer.packb(pytz.utc)) is pytz.utc
    assert packer.unpackb(packer.packb(dateutil_tz.UTC)) is dateutil_tz.UTC


def test_nested_tz_values(packer):
    values = [TZ_VALUES[name]() for name in sorted(TZ_VALUES)]
    got = packer.unpackb(packer.packb({'when': values, 'first': values[0]}))
    assert got == {'when': tuple(values), 'first': values[0]}


# --------------------------------------------------------------------------
# over a real RPC, both directions

@pytest.mark.timeout(30)
def test_tz_datetimes_over_rpc_both_ways(make_server, make_client):
    server, endpoint = make_server()
    seen = []

    @server.register_rpc(name='shift')
    def shift(when, days):
        seen.append((type(when.tzinfo), when.utcoffset()))
        return when + datetime.timedelta(days=days)

    server.register_rpc(name='echo')(lambda *args: args)
    client = make_client(server.user_id, endpoint)
    for name in sorted(TZ_VALUES):
        value = TZ_VALUES[name]()
        got = client.shift(value, 2).get()
        assert got == value + datetime.timedelta(days=2), name
        assert type(got.tzinfo) is type(value.tzinfo), name
        assert seen[-1] == (type(value.tzinfo), value.utcoffset()), name
    values = tuple(TZ_VALUES[name]() for name in sorted(TZ_VALUES))
    echoed = client.echo(*values, *(v.tzinfo for v in values)).get()
    assert echoed[:len(values)] == values
    assert [type(t) for t in echoed[len(values):]] == [type(v.tzinfo) for v in values]


# --------------------------------------------------------------------------
# hostile pickles

class _Reduce:
    """Pickles as whatever __reduce__ tuple it is given."""

    def __init__(self, *reduce_value):
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


def _refused(packer, obj_or_bytes, match=None, protocols=(2, 5), codes=(123, 125)):
    for protocol in protocols:
        data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else pickle.dumps(
            obj_or_bytes, protocol)
        for code in codes:
            with pytest.raises(ValueError, match=match):
                packer.unpackb(_ext(code, data))


def test_globals_outside_the_allowlist_are_named(packer):
    tzstr = dateutil_tz_tz.tzstr('EST5EDT')
    _refused(packer, tzstr, match=r'dateutil\.tz\.tz\.tzstr')
    _refused(packer, _Reduce(pytz.timezone, ('Europe/Paris',)), match=r'pytz\.timezone')
    # the refusal names time.sleep: find_class refused it, so it was never
    # resolved, let alone called
    _refused(packer, _Reduce(time.sleep, (60,)), match=r'refusing to unpickle time\.sleep')
    # the 2.x tzfile form: its class rebuilt from a file name
    _refused(packer, _Reduce(dateutil_tz_tz.tzrange, ('EST', -18000)),
             match=r'dateutil\.tz\.tz\.tzrange')


def test_newobj_of_a_class_not_allowed_is_refused(packer):
    for cls in (dateutil_tz_tz.tzstr, datetime.timezone, dict, Packer):
        _refused(packer, _newobj(cls.__module__, cls.__qualname__, {}),
                 match='NEWOBJ of %s.%s' % (cls.__module__, cls.__qualname__))


def test_build_on_shared_instances_is_refused(packer):
    # BUILD would write into the process-wide singletons and caches
    cases = [
        _Reduce(dateutil_tz_tz.tzutc, (), {'_evil': 1}),
        _Reduce(dateutil_tz_tz.tzoffset, ('X', 3600), {'_offset': 'evil'}),
        _Reduce(pytz._UTC, (), {'zone': 'evil'}),
        _Reduce(pytz._p, ('Europe/Paris', 3600, 0, 'CET'), {'_utcoffset': 'evil'}),
        _Reduce(pytz.FixedOffset, (60,), {'_minutes': 'evil'}),
        _Reduce(dateutil_tz_tz.tzlocal, (), {'_std_offset': 'evil'}),
    ]
    # NEWOBJ of tzutc (dateutil 2.x) gives the singleton: never BUILT
    _refused(packer, _newobj('dateutil.tz.tz', 'tzutc', {'_evil': 1}),
             match=r'BUILD of an object made by dateutil\.tz\.tz\.tzutc')
    for case in cases:
        _refused(packer, case, match='BUILD')
    assert '_evil' not in vars(dateutil_tz.tzutc())
    assert dateutil_tz.tzoffset('X', 3600).utcoffset(None) == datetime.timedelta(hours=1)
    assert pytz.utc.zone == 'UTC'
    assert pytz.FixedOffset(60).utcoffset(None) == datetime.timedelta(hours=1)


def _newobj(module, name, state=None):
    """A protocol 2 pickle: NEWOBJ of module.name [, BUILD(state)], written
    by hand (the pickler checks what real objects look like)."""
    data = b'\x80\x02c%s\n%s\n)\x81' % (module.encode(), name.encode())
    if state is not None:
        data += pickle.dumps(state, 2)[2:-1] + b'b'
    return data + b'.'


def _tzlocal_newobj(state):
    return _newobj('dateutil.tz.tz', 'tzlocal', state)


def _datetime_with(tz_pickle, when):
    """A protocol 2 datetime pickle around a tzinfo pickle's body."""
    state = when.__reduce__()[1][0]
    return (b'\x80\x02cdatetime\ndatetime\nC' + bytes([len(state)]) + state
            + tz_pickle[2:-1] + b'\x86R.')


def test_dateutil_2_pickles_decode(packer):
    # dateutil 2.x (what most programs, and gevent-era upstream, run)
    # pickles tzutc and tzoffset with copyreg's NEWOBJ (+ BUILD)
    when = datetime.datetime(2020, 7, 1, 12)
    utc = _newobj('dateutil.tz.tz', 'tzutc')
    assert packer.unpackb(_ext(123, utc)) is dateutil_tz.tzutc()
    got = packer.unpackb(_ext(125, _datetime_with(utc, when)))
    assert got == when.replace(tzinfo=dateutil_tz.tzutc()) and got.tzinfo is dateutil_tz.UTC
    for name in ('BRST', None):
        want = dateutil_tz.tzoffset(name, -10800)
        offset = _newobj('dateutil.tz.tz', 'tzoffset', dict(vars(want)))
        assert packer.unpackb(_ext(123, offset)) == want
        got = packer.unpackb(_ext(125, _datetime_with(offset, when)))
        assert got.utcoffset() == datetime.timedelta(hours=-3) and got.tzname() == name
    local = dict(vars(dateutil_tz.tzlocal()))
    got = packer.unpackb(_ext(125, _datetime_with(_tzlocal_newobj(local), when)))
    assert type(got.tzinfo) is dateutil_tz_tz.tzlocal and vars(got.tzinfo) == local
    # a tzoffset state that is not one
    for state in ({'_name': 'X', '_offset': 'evil'}, {'_name': 'X'},
                  {'_name': ('X',), '_offset': datetime.timedelta(0)},
                  dict(vars(dateutil_tz.tzoffset('X', 0)), _more=1)):
        _refused(packer, _newobj('dateutil.tz.tz', 'tzoffset', state),
                 match='differs from the attributes', codes=(123,))
        _refused(packer, _datetime_with(_newobj('dateutil.tz.tz', 'tzoffset', state), when),
                 match='differs from the attributes', codes=(125,))


def test_tzlocal_state_must_be_tzlocals(packer):
    good = dict(vars(dateutil_tz.tzlocal()))
    # as tzlocal pickles itself: accepted
    got = packer.unpackb(_ext(123, _tzlocal_newobj(good)))
    assert type(got) is dateutil_tz_tz.tzlocal and vars(got) == good
    bad_states = [
        dict(good, _extra=1),                                  # an attribute too many
        {k: v for k, v in good.items() if k != '_hasdst'},     # one missing
        dict(good, _std_offset=3600),                          # wrong type
        dict(good, _std_offset=datetime.timedelta(days=3)),    # not an offset
        dict(good, _tznames=('x' * 1000, 'y')),                # long names
        dict(good, _tznames=('A', 'B') * 20),                  # many names
        dict(good, _hasdst=dateutil_tz.tzutc()),               # an object
    ]
    when = datetime.datetime(2020, 1, 1)
    # the object in the last state pickles with a NEWOBJ of its own on some
    # Pythons (3.10): refused for that before its attributes are compared
    refusal = 'differs from the attributes|more than one NEWOBJ'
    for state in bad_states:
        _refused(packer, _tzlocal_newobj(state), match=refusal, codes=(123,))
        _refused(packer, _datetime_with(_tzlocal_newobj(state), when),
                 match=refusal, codes=(125,))


def test_tzlocal_build_may_not_change_class_or_slots(packer):
    good = dict(vars(dateutil_tz.tzlocal()))
    # (dict, slots) state: slots are set with setattr, which could set __class__
    _refused(packer, _tzlocal_newobj((good, {'__class__': dateutil_tz_tz.tzutc})),
             match='BUILD with a state that is not a dict')
    # NEWOBJ without BUILD leaves a tzlocal without its attributes
    _refused(packer, _newobj('dateutil.tz.tz', 'tzlocal'), match='differs from the attributes',
             codes=(123,))
    # the new object fetched from the memo (after a use) cannot be BUILT
    _refused(packer, b'\x80\x02cdateutil.tz.tz\ntzlocal\n)\x81q\x00\x85h\x00}b.',
             match='fetched from the memo')
    # two NEWOBJ: the second could be BUILT through a memo copy of the first
    twice = _tzlocal_newobj(good)[:-1] + _tzlocal_newobj(good)[2:-1] + b'\x86.'
    _refused(packer, twice, match='more than one NEWOBJ')


def _fresh_keys(n):
    """n str keys made at runtime: no code constant, so never interned unless
    something interns them."""
    return [''.join(['_probe_', secrets.token_hex(12)]) for _ in range(n)]


def _interned(key):
    """Whether an interned str equal to `key` exists. sys.intern of a new
    equal str returns that new str itself only when none did (and interns
    it: probe each key once, after what it tests)."""
    probe = ''.join(list(key))
    return sys.intern(probe) is not probe


def _hostile_states(keys):
    """tzlocal and tzoffset states with peer-chosen keys from `keys`
    (two each): one key too many, and one in place of a real attribute."""
    states = []
    for i, cls in enumerate(['tzlocal', 'tzoffset'] * (len(keys) // 4)):
        base = dict(vars(dateutil_tz.tzlocal() if cls == 'tzlocal'
                         else dateutil_tz.tzoffset('X', 3600)))
        extra, instead = keys[2 * i], keys[2 * i + 1]
        first = sorted(base)[0]
        states.append((cls, dict(base, **{extra: 1})))
        states.append((cls, {(instead if k == first else k): v for k, v in base.items()}))
    return states


def test_peer_chosen_state_keys_are_never_interned(packer):
    # _pickle's BUILD interns every key of the state before setting it on
    # an object without __setstate__; interned strs are immortal from 3.12
    # on, so fresh keys in every message would grow the process forever.
    # 2000 hostile pickles, each refused: none of their keys was interned.
    keys = _fresh_keys(2000)
    states = _hostile_states(keys)
    assert len(states) == 2000
    for n, (cls, state) in enumerate(states):
        data = _newobj('dateutil.tz.tz', cls, state)
        if n % 2:
            data = _datetime_with(data, datetime.datetime(2020, 1, 1))
        with pytest.raises(ValueError, match='differs from the attributes'):
            packer.unpackb(_ext(125 if n % 2 else 123, data))
    assert [k for k in keys if _interned(k)] == []


def test_state_keys_are_not_interned_while_the_pickle_runs(packer):
    # Before 3.12 an interned str dies with its last reference: once a
    # refused pickle is freed, the test above cannot see that its keys had
    # been interned. Here they are looked for while the pickle still runs,
    # from a Python function of the allowlist (pytz._UTC) that the pickle
    # calls after its BUILD.
    keys = _fresh_keys(80)
    current, seen = [], []

    def profile(frame, event, arg):
        if event == 'call' and frame.f_code is pytz._UTC.__code__:
            seen.append([k for k in current if _interned(k)])

    for cls, state in _hostile_states(keys):
        current[:] = [k for k in state if k.startswith('_probe_')]
        body = _newobj('dateutil.tz.tz', cls, state)[2:-1]
        data = b'\x80\x02' + body + b'cpytz\n_UTC\n)R\x86.'
        sys.setprofile(profile)
        try:
            with pytest.raises(ValueError, match='expected a'):
                packer.unpackb(_ext(123, data))
        finally:
            sys.setprofile(None)
    assert seen == [[]] * 80


def test_huge_or_recursive_state_is_refused(packer):
    good = dict(vars(dateutil_tz.tzlocal()))
    # too long for any datetime pickle
    _refused(packer, _tzlocal_newobj(dict(good, **{'k%d' % i: i for i in range(3000)})),
             match='too long')
    # fits, but is no tzlocal state
    _refused(packer, _tzlocal_newobj(dict(good, **{'k%d' % i: i for i in range(500)})),
             match='differs from the attributes', codes=(123,))
    # a list that contains itself: EMPTY_LIST BINPUT 0 BINGET 0 APPEND
    _refused(packer, b'\x80\x02]q\x00h\x00a.', match='shared')
    # a dict that contains itself, as a BUILD state
    _refused(packer, b'\x80\x02cdateutil.tz.tz\ntzlocal\n)\x81}q\x00X\x01\x00\x00\x00ah\x00sb.',
             match='shared')
    # tuples nested deeper than any datetime pickle
    _refused(packer, b'\x80\x02)' + b'\x85' * 40 + b'.', match='deep')
    # APPEND onto something that is not a list would call its .append
    _refused(packer, b'\x80\x02cdateutil.tz.tz\ntzutc\n)RK\x01a.', match='not a list')
    _refused(packer, b'\x80\x02cdateutil.tz.tz\ntzutc\n)RK\x01K\x02s.', match='not a dict')


def test_hostile_tzfile_pickles(packer, tmp_path):
    tzfile_mod = pytest.importorskip('dateutil.tz._tzfile')
    paris = _paris_tzfile()
    fn, args = paris.__reduce_ex__(5)[:2]
    cls, key, filename, data = args

    def unpickle(*a):
        return _Reduce(tzfile_mod._unpickle, a)

    # the real one decodes
    assert packer.unpackb(_ext(123, pickle.dumps(unpickle(*args), 5))) == paris
    bad_data = [
        data[:5],                                               # a field missing
        (data[0], ['x'] * len(data[1])) + data[2:],             # transitions not ints
        (data[0], [10 ** 30]) + data[2:],                       # out of range
        (data[0], data[1], [86400 * 3] * len(data[2])) + data[3:],   # offsets > a day
        data[:4] + (['A' * 500],) + data[5:],                   # long abbreviation
        data[:5] + (b'X' * 1000,),                              # long TZ string
        (data[0], [[1, 2] for _ in range(3)]) + data[2:],       # nested lists
    ]
    for d in bad_data:
        _refused(packer, unpickle(cls, key, filename, d), match='_unpickle')
    # a class other than tzfile
    _refused(packer, unpickle(dateutil_tz_tz.tzutc, key, filename, data), match='_unpickle')
    # tzfile itself would open a file named by the network
    target = tmp_path / 'not-a-zone'
    _refused(packer, _Reduce(cls, (str(target),)), match='reads a file')
    # subclass-style extra state: BUILD on the rebuilt tzfile
    _refused(packer, _Reduce(tzfile_mod._unpickle, args, {'_trans_utc': 'evil'}),
             match='BUILD')


def test_hostile_pytz_pickles(packer):
    before = len(PARIS._tzinfos)
    # a state the zone does not have would be added to pytz's cache
    _refused(packer, _Reduce(pytz._p, ('Europe/Paris', 1234, 0, 'EVIL')), match='no state')
    assert len(PARIS._tzinfos) == before
    _refused(packer, _Reduce(pytz._p, ('../../../etc/passwd',)))
    _refused(packer, _Reduce(pytz._p, ('Europe/Paris', 'x', 0, 'CET')), match='_p')
    _refused(packer, _Reduce(pytz._p, ('Europe/Paris', 10 ** 20, 0, 'CET')), match='_p')
    _refused(packer, _Reduce(pytz.FixedOffset, (1.5,)), match='FixedOffset')
    _refused(packer, _Reduce(pytz.FixedOffset, (100000,)), match='FixedOffset')
    _refused(packer, _Reduce(dateutil_tz_tz.tzoffset, (('x',) * 3, 60)), match='tzoffset')
    _refused(packer, _Reduce(dateutil_tz_tz.tzoffset, ('x', 10 ** 9)), match='tzoffset')


# --------------------------------------------------------------------------
# other tzinfo classes: translation_table (the README's example)

class Shift(datetime.tzinfo):
    """A program's own tzinfo: a fixed offset in minutes."""

    def __init__(self, minutes):
        self.minutes = minutes

    def utcoffset(self, dt):
        return datetime.timedelta(minutes=self.minutes)

    def dst(self, dt):
        return datetime.timedelta(0)

    def tzname(self, dt):
        return 'Shift%+d' % self.minutes


DEFAULT_UNPACK_DATETIME = Packer.default_translation_table[125][2]


def pack_datetime(dt):
    if isinstance(dt.tzinfo, Shift):
        return b'S%d|%s' % (dt.tzinfo.minutes, dt.replace(tzinfo=None).isoformat().encode())
    return b'P' + pickle.dumps(dt, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_datetime(data):
    if data[:1] == b'S':
        minutes, text = data[1:].split(b'|')
        return datetime.datetime.fromisoformat(text.decode()).replace(
            tzinfo=Shift(int(minutes)))
    return DEFAULT_UNPACK_DATETIME(data[1:])     # the restricted default


def test_other_tzinfo_classes_are_refused_by_default(packer):
    value = datetime.datetime(2020, 1, 1, tzinfo=Shift(30))
    with pytest.raises(ValueError, match=r'test_codec_tz\.Shift'):
        packer.unpackb(packer.packb(value))


@pytest.mark.timeout(30)
def test_translation_table_example(make_server, make_client):
    table = {1: (datetime.datetime, pack_datetime, unpack_datetime)}
    packer = Packer(translation_table=table)
    value = datetime.datetime(2020, 1, 1, 12, tzinfo=Shift(30))
    got = packer.unpackb(packer.packb(value))
    assert got == value and isinstance(got.tzinfo, Shift) and got.tzinfo.minutes == 30
    other = PARIS.localize(datetime.datetime(2020, 7, 1))
    assert packer.unpackb(packer.packb(other)).tzinfo is other.tzinfo

    server, endpoint = make_server(translation_table=table)
    server.register_rpc(name='later')(lambda when: when + datetime.timedelta(hours=1))
    client = make_client(server.user_id, endpoint, translation_table=table)
    got = client.later(value).get()
    assert got == value + datetime.timedelta(hours=1)
    assert got.tzinfo.minutes == 30


# --------------------------------------------------------------------------
# the allowlist is filled as pickles need it

def test_import_pseud_imports_no_tz_package():
    # dateutil, pytz and zoneinfo are imported by the first pickle naming
    # one of them, each on its own; msgpack never
    values = {
        'naive': datetime.datetime(2020, 1, 1),
        'utc': datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        'zoneinfo': datetime.datetime(2020, 1, 1, tzinfo=_paris_zoneinfo()),
        'dateutil': datetime.datetime(2020, 1, 1, tzinfo=dateutil_tz.tzutc()),
        'pytz': datetime.datetime(2020, 1, 1, tzinfo=pytz.utc),
    }
    args = ['%s=%s' % (k, Packer().packb(v).hex()) for k, v in values.items()]
    script = textwrap.dedent('''
        import sys
        import pseud, pseud.packer, pseud.common, pseud.utils, pseud.interfaces
        from pseud.packer import Packer

        def imported():
            return sorted({m.split('.')[0] for m in sys.modules} &
                          {'dateutil', 'pytz', 'zoneinfo', 'msgpack'})

        print('import', *imported())
        for arg in sys.argv[1:]:
            name, data = arg.split('=')
            Packer().unpackb(bytes.fromhex(data))
            print(name, *imported())
    ''')
    child = subprocess.run([sys.executable, '-c', script] + args, capture_output=True,
                           text=True, timeout=60, cwd=os.path.dirname(os.path.abspath(__file__)))
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == [
        'import', 'naive', 'utc', 'zoneinfo zoneinfo', 'dateutil dateutil zoneinfo',
        'pytz dateutil pytz zoneinfo']
