"""dateutil 2.x tzfile zones from real peers (ext types 123 and 125): the
pickles python-dateutil 2.8.2 and 2.9.0 write (tests/tz_pickles/, made by
its make.sh) decode into the local dateutil's tzfile, over Packer and over
RPC, with every field checked; hostile variants are refused, naming what
is wrong (docs/protocol.rst, the allowlist)."""
import contextlib
import copyreg
import datetime
import io
import os
import pickle
import pickletools
import shutil
import subprocess
import sys
import textwrap

import msgpack
import pytest

from pseud.packer import ExtType, Packer

dateutil_tz = pytest.importorskip('dateutil.tz')
from dateutil.tz import tz as dateutil_tz_tz  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PICKLES = os.path.join(HERE, 'tz_pickles')
FIXTURES = sorted(name for name in os.listdir(PICKLES) if name.endswith('.pickle'))
DATETIMES = [name for name in FIXTURES if name.endswith('-datetime.pickle')]
TZINFOS = [name for name in FIXTURES if name.endswith('-tzinfo.pickle')]

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
# what every fixture holds: 2024-03-31 01:30 in Europe/Paris, half an hour
# before the spring DST change (CET, +01:00 -> CEST, +02:00)
WALL = datetime.datetime(2024, 3, 31, 1, 30)
INSTANT = datetime.datetime(2024, 3, 31, 0, 30, tzinfo=UTC)


def fixture(name):
    with open(os.path.join(PICKLES, name), 'rb') as f:
        return f.read()


def _ext(code, data):
    return msgpack.packb(msgpack.ExtType(code, data))


def test_the_fixtures_are_there():
    # 2.8.2 and 2.9.0, Python 3 at protocols 2-5 and Python 2.7 at 2 (its
    # highest, what gevent-era upstream peers send)
    for version in ('2.8.2', '2.9.0'):
        for protocol in (2, 3, 4, 5):
            assert 'dateutil-%s-py3.11-p%d-datetime.pickle' % (version, protocol) in DATETIMES
    assert [n for n in DATETIMES if '-py2.7-' in n] == [
        'dateutil-2.8.2-py2.7-p2-datetime.pickle',
        'dateutil-2.9.0.post0-py2.7-p2-datetime.pickle']
    assert len(TZINFOS) == len(DATETIMES) == 10


def assert_paris(tz):
    """tz gives Paris' offsets: around the 2024 spring change, and back
    through the transitions the pickle carried."""
    assert isinstance(tz, dateutil_tz.tzfile)
    assert WALL.replace(tzinfo=tz).utcoffset() == HOUR
    assert WALL.replace(tzinfo=tz).tzname() == 'CET'
    assert WALL.replace(hour=3, tzinfo=tz).utcoffset() == 2 * HOUR
    assert WALL.replace(hour=3, tzinfo=tz).tzname() == 'CEST'
    assert datetime.datetime(1995, 7, 1, tzinfo=tz).utcoffset() == 2 * HOUR
    assert datetime.datetime(1995, 12, 1, tzinfo=tz).utcoffset() == HOUR
    local = dateutil_tz.gettz('Europe/Paris')
    if local is not None:
        # the local database's zone agrees on every month of 1980-2023
        for year in range(1980, 2024):
            for month in range(1, 13):
                when = datetime.datetime(year, month, 15, 12)
                assert (when.replace(tzinfo=tz).utcoffset()
                        == when.replace(tzinfo=local).utcoffset()), when


@pytest.mark.parametrize('name', DATETIMES)
def test_datetime_pickles_decode(name):
    got = Packer().unpackb(_ext(125, fixture(name)))
    assert type(got) is datetime.datetime
    assert got == INSTANT
    assert got.replace(tzinfo=None) == WALL
    assert got.utcoffset() == HOUR and got.tzname() == 'CET'
    # two hours later on the wall clock, past the change: CEST
    later = got + 2 * HOUR
    assert later.utcoffset() == 2 * HOUR and later.tzname() == 'CEST'
    assert later == INSTANT + HOUR
    assert_paris(got.tzinfo)


@pytest.mark.parametrize('name', TZINFOS)
def test_tzinfo_pickles_decode(name):
    tz = Packer().unpackb(_ext(123, fixture(name)))
    assert_paris(tz)
    assert repr(tz) == "tzfile('/usr/share/zoneinfo/Europe/Paris')"


def test_decoded_zones_pack_again_as_the_local_dateutil_does():
    # what we send on is the local dateutil's own pickle, which decodes too
    packer = Packer()
    got = packer.unpackb(_ext(125, fixture(DATETIMES[0])))
    again = packer.unpackb(packer.packb(got))
    assert again == got and again.utcoffset() == got.utcoffset()
    assert (again + 2 * HOUR).utcoffset() == 2 * HOUR


@pytest.mark.timeout(30)
def test_over_rpc_both_ways(make_server, make_client):
    # a peer that sends the 2.x pickles as they are (ExtType packs its bytes
    # as that ext type): in a reply, and in a call's arguments
    server, endpoint = make_server()
    server.register_rpc(name='send')(lambda name, code: ExtType(code, fixture(name)))

    @server.register_rpc(name='look')
    def look(when, tz):
        return (type(when.tzinfo).__name__, when.isoformat(),
                (when + 2 * HOUR).isoformat(), tz.utcoffset(WALL), tz.tzname(WALL))

    client = make_client(server.user_id, endpoint)
    for name in DATETIMES:
        got = client.send(name, 125).get()
        assert got == INSTANT and got.utcoffset() == HOUR, name
        assert (got + 2 * HOUR).utcoffset() == 2 * HOUR, name
        assert_paris(client.send(name.replace('-datetime', '-tzinfo'), 123).get())
        seen = client.look(ExtType(125, fixture(name)),
                           ExtType(123, fixture(name.replace('-datetime', '-tzinfo')))).get()
        assert seen == ('tzfile', '2024-03-31T01:30:00+01:00', '2024-03-31T03:30:00+02:00',
                        datetime.timedelta(hours=1), 'CET'), name


# --------------------------------------------------------------------------
# hostile variants: the real pickles, edited

class FakeTtinfo:
    """Stands for dateutil 2.x's _ttinfo: read from a fixture, edited,
    pickled again under that name (NEWOBJ + BUILD of its state)."""

    def __setstate__(self, state):
        self.state = dict(state)

    def __reduce_ex__(self, protocol):
        return (copyreg.__newobj__, (type(self),), self.state)


class FakeTzfile(datetime.tzinfo):
    """Stands for dateutil 2.x's tzfile: REDUCE of its arguments + BUILD."""

    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = dict(state)

    def __reduce_ex__(self, protocol):
        if self.state is None:
            return (type(self), self.args)
        return (type(self), self.args, self.state)


class _FakeLoader(pickle.Unpickler):
    """Loads a (trusted) fixture into the fakes."""

    def find_class(self, module, name):
        if (module, name) == ('dateutil.tz.tz', 'tzfile'):
            return FakeTzfile
        if (module, name) == ('dateutil.tz.tz', '_ttinfo'):
            return FakeTtinfo
        return super().find_class(module, name)


def load_fake(name='dateutil-2.9.0-py3.11-p5-tzinfo.pickle'):
    return _FakeLoader(io.BytesIO(fixture(name)), encoding='latin1').load()


@contextlib.contextmanager
def _named_as_dateutil2():
    saved = {}
    for fake, name in ((FakeTzfile, 'tzfile'), (FakeTtinfo, '_ttinfo')):
        saved[name] = getattr(dateutil_tz_tz, name, None)
        fake.__module__, fake.__qualname__ = 'dateutil.tz.tz', name
        setattr(dateutil_tz_tz, name, fake)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                delattr(dateutil_tz_tz, name)
            else:
                setattr(dateutil_tz_tz, name, value)


def dumps2(value, protocol):
    """value (fakes inside) pickled as dateutil 2.x's classes would be."""
    with _named_as_dateutil2():
        return pickle.dumps(value, protocol)


def test_the_fakes_pickle_as_dateutil_2_does():
    # re-pickled unchanged, a fixture decodes as the original does: the
    # refusals below come from the edits alone
    for protocol in (2, 5):
        tz = Packer().unpackb(_ext(123, dumps2(load_fake(), protocol)))
        assert_paris(tz)
        when = WALL.replace(tzinfo=load_fake())
        got = Packer().unpackb(_ext(125, dumps2(when, protocol)))
        assert got == INSTANT


def _refused(tz, match, protocols=(2, 5)):
    """The edited zone, alone (ext 123) and in a datetime (125), is refused."""
    for protocol in protocols:
        for code, value in ((123, tz), (125, WALL.replace(tzinfo=tz))):
            with pytest.raises(ValueError, match=match):
                Packer().unpackb(_ext(code, dumps2(value, protocol)))


def edited(**changes):
    """The Paris fixture with its tzfile state changed."""
    tz = load_fake()
    tz.state.update(changes)
    return tz


def _ttinfos(tz):
    return tz.state['_ttinfo_list']


def test_tzfile_that_would_read_a_file_is_refused(tmp_path):
    opened = []
    target = str(tmp_path / 'zone')
    with open(target, 'wb') as f:
        f.write(fixture(FIXTURES[0]))       # not a zone: never read anyway

    def audit(event, args):
        if event == 'open' and args and str(args[0]) == target:
            opened.append(args)

    sys.addaudithook(audit)
    for args in ((target,), (target, None), (target, 'Europe/Paris'), (None,),
                 (None, target, 'extra'), (None, 7)):
        tz = load_fake()
        tz.args = args
        _refused(tz, r'dateutil\.tz\.tz\.tzfile other than tzfile\(None, filename\)')
    assert opened == []


@pytest.mark.parametrize('change, why', [
    (dict(_trans_list_utc=('x',) * 5), '_trans_list, _trans_list_utc or _trans_idx'),
    (dict(_trans_list=[10 ** 30] * 3), '_trans_list, _trans_list_utc or _trans_idx'),
    (dict(_trans_list_utc=(1, 2)), 'differ in length'),
    (dict(_filename=b'/usr/share/zoneinfo/Europe/Paris'), '_filename'),
    (dict(_filename='x' * 2000), '_filename'),
    (dict(_ttinfo_list=[]), '_ttinfo_list is not a list'),
    (dict(_ttinfo_list='abc'), '_ttinfo_list is not a list'),
    (dict(_ttinfo_list=[1, 2]), 'something else than _ttinfo'),
    (dict(_ttinfo_std=3600), '_ttinfo_std'),
    (dict(_ttinfo_first='CET'), '_ttinfo_std'),
    (dict(_evil=1), 'other attributes'),
])
def test_tzfile_state_of_wrong_types_is_refused(change, why):
    _refused(edited(**change), why)


def test_tzfile_state_missing_an_attribute_is_refused():
    tz = load_fake()
    del tz.state['_ttinfo_before']
    _refused(tz, 'other attributes')
    tz = load_fake()
    tz.state = None                     # REDUCE without BUILD
    _refused(tz, 'without its state')


@pytest.mark.parametrize('field, value, why', [
    ('offset', 10 ** 9, 'offset'),
    ('offset', 3600.0, 'offset'),
    ('delta', datetime.timedelta(hours=5), 'same delta'),      # offset is not 5 h
    ('delta', 3600, 'offset'),
    ('isdst', 'yes', 'isdst'),
    ('isdst', 10 ** 6, 'isdst'),
    ('isstd', 1, 'isstd'),
    ('isgmt', None, 'isgmt'),
    ('abbr', 'A' * 500, 'abbreviation'),
    ('abbr', b'CET', 'abbreviation'),
    ('dstoffset', datetime.timedelta(days=3), 'dstoffset'),
    ('dstoffset', 0, 'dstoffset'),
])
def test_ttinfo_fields_of_wrong_types_are_refused(field, value, why):
    tz = load_fake()
    _ttinfos(tz)[0].state[field] = value
    _refused(tz, why)


def test_ttinfo_states_not_dateutils_are_refused():
    tz = load_fake()
    _ttinfos(tz)[1].state['evil'] = 1
    _refused(tz, 'a _ttinfo state is not')
    tz = load_fake()
    del _ttinfos(tz)[1].state['dstoffset']
    _refused(tz, 'a _ttinfo state is not')
    # NEWOBJ without BUILD: refused when fetched from the memo (it could
    # then be BUILT after a use), and when the zone is checked
    tz = load_fake()
    _ttinfos(tz)[2].state = None
    _refused(tz, 'fetched from the memo before its BUILD')
    tz = load_fake()
    bare = FakeTtinfo()
    bare.state = None
    tz.state['_ttinfo_list'] = _ttinfos(tz) + [bare]
    _refused(tz, 'a _ttinfo without its state')


def test_transitions_must_name_the_zones_own_ttinfos():
    tz = load_fake()
    stranger = FakeTtinfo()
    stranger.state = dict(_ttinfos(tz)[0].state)
    idx = list(tz.state['_trans_idx'])
    idx[3] = stranger                   # equal to one of the zone's, not one
    tz.state['_trans_idx'] = tuple(idx)
    _refused(tz, '_trans_idx holds something else')
    tz = load_fake()
    tz.state['_ttinfo_list'] = _ttinfos(tz) + [_ttinfos(tz)[0]]
    _refused(tz, 'twice')


def test_huge_lists_are_refused():
    # longer than any zone's pickle (2.x: 4.3 kB at most)
    _refused(edited(_trans_list_utc=tuple(range(3000))), 'too long')
    many = []
    for i in range(300):
        t = FakeTtinfo()
        t.state = dict(_ttinfos(load_fake())[0].state, abbr='T%d' % i)
        many.append(t)
    _refused(edited(_ttinfo_list=many), 'too long')


def test_ttinfo_records_cannot_be_built_twice_or_escape():
    # NEWOBJ _ttinfo, memo, BUILD, memo GET, BUILD again
    ttinfo = b'\x80\x02cdateutil.tz.tz\n_ttinfo\n)\x81q\x00'
    state = pickletools.optimize(pickle.dumps({'offset': 0}, 2))[2:-1]
    with pytest.raises(ValueError, match=r'BUILD of an object made by dateutil\.tz\.tz\._ttinfo'):
        Packer().unpackb(_ext(123, ttinfo + state + b'bh\x00' + state + b'b\x86.'))
    # fetched from the memo before its BUILD
    with pytest.raises(ValueError, match='fetched from the memo'):
        Packer().unpackb(_ext(123, ttinfo + b'h\x00' + state + b'b\x86.'))
    # a record is no tzinfo, nor the result of any ext type
    for code in (123, 124, 125, 126):
        with pytest.raises(ValueError, match='_ttinfo|expected a'):
            Packer().unpackb(_ext(code, ttinfo + state + b'b.'))
    # REDUCE of a record, or a record's arguments
    with pytest.raises(ValueError, match='not callable'):
        Packer().unpackb(_ext(123, ttinfo + b')R.'))
    with pytest.raises(ValueError, match='with arguments'):
        Packer().unpackb(_ext(123, b'\x80\x02cdateutil.tz.tz\n_ttinfo\nK\x01\x85\x81.'))
    # two tzfiles in one pickle
    one = dumps2(load_fake(), 2)
    with pytest.raises(ValueError, match='second new object'):
        Packer().unpackb(_ext(123, one[:-1] + one[2:-1] + b'\x86.'))


# --------------------------------------------------------------------------
# with a local dateutil 2.x: the pickles decode into its own tzfile

def _dateutil2_elsewhere():
    """(dateutil dir, six.py) of a python-dateutil 2.7+ some interpreter on
    this machine has (pure Python: any Python 3 runs it), or None."""
    probe = ('import dateutil, six, sys; '
             'print(dateutil.__version__); print(dateutil.__path__[0]); print(six.__file__)')
    names = ['python3'] + ['python3.%d' % minor for minor in range(10, 14)]
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            out = subprocess.run([path, '-c', probe], capture_output=True, text=True,
                                 timeout=30, env=dict(os.environ, PYTHONPATH=''))
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = out.stdout.split()
        if out.returncode == 0 and len(lines) == 3:
            major, minor = (int(x) for x in lines[0].split('.')[:2])
            if major == 2 and minor >= 7:
                return lines[1], lines[2]
    return None


@pytest.mark.timeout(120)
def test_local_dateutil_2_gets_its_own_tzfile(tmp_path):
    found = _dateutil2_elsewhere()
    if found is None:
        pytest.skip('no python-dateutil 2.7+ on this machine')
    package, six_file = found
    os.symlink(package, str(tmp_path / 'dateutil'))
    os.symlink(six_file, str(tmp_path / 'six.py'))
    script = textwrap.dedent('''
        import datetime, os, pickle, sys
        sys.path.insert(0, sys.argv[1])
        import dateutil, msgpack
        from dateutil.tz import tz
        assert dateutil.__version__.startswith('2.'), dateutil.__version__
        from pseud.packer import Packer
        packer = Packer()
        for name in sys.argv[2:]:
            data = open(os.path.join(%r, name), 'rb').read()
            code = 125 if name.endswith('-datetime.pickle') else 123
            got = packer.unpackb(msgpack.packb(msgpack.ExtType(code, data)))
            # what this dateutil's own unpickling makes of the (trusted) file
            want = pickle.loads(data, encoding='latin1')
            zone, want_zone = (got.tzinfo, want.tzinfo) if code == 125 else (got, want)
            assert type(zone) is tz.tzfile, type(zone)
            assert zone == want_zone and vars(zone) == vars(want_zone), name
            assert all(type(t) is tz._ttinfo for t in zone._trans_idx)
            if code == 125:
                assert got == want and (got + datetime.timedelta(hours=2)).utcoffset() \\
                    == datetime.timedelta(hours=2)
            print('ok', name)
    ''' % PICKLES)
    child = subprocess.run([sys.executable, '-c', script, str(tmp_path)] + FIXTURES,
                           capture_output=True, text=True, timeout=100, cwd=HERE)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split('\n')[:-1] == ['ok ' + name for name in FIXTURES]
