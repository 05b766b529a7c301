"""Timezone-aware datetimes (dateutil, pytz, zoneinfo, datetime.timezone)
between pseud-native and upstream pseud 1.0.1, both ways: upstream packs
them as pickles (ext 125, its highest protocol) that our restricted decoder
must accept, and reads the pickles we send with plain pickle.loads. The
upstream environment has python-dateutil and pytz
(tests/interop/requirements.txt)."""
import datetime

import pytest

from test_upstream import (  # noqa: F401  (fixtures and helpers)
    INTEROP_PYTHON, call, register_ours, upstream, upstream_client, upstream_server,
    value_of)

dateutil_tz = pytest.importorskip('dateutil.tz')
pytz = pytest.importorskip('pytz')
zoneinfo = pytest.importorskip('zoneinfo')

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not INTEROP_PYTHON, reason='PSEUD_INTEROP_PYTHON is not set: run '
                       '`bash scripts/test.sh`, which makes .venv-interop'),
]


def _values():
    paris_file = dateutil_tz.gettz('Europe/Paris')
    try:
        paris_zi = zoneinfo.ZoneInfo('Europe/Paris')
    except zoneinfo.ZoneInfoNotFoundError:      # pragma: no cover
        pytest.skip('no tz database on this machine')
    if paris_file is None:                      # pragma: no cover
        pytest.skip('dateutil finds no Europe/Paris')
    paris = pytz.timezone('Europe/Paris')
    return {
        'tzutc': datetime.datetime(2020, 1, 1, 12, tzinfo=dateutil_tz.tzutc()),
        'tzlocal': datetime.datetime(2020, 7, 1, 12, tzinfo=dateutil_tz.tzlocal()),
        'tzoffset': datetime.datetime(2020, 1, 1, 12, tzinfo=dateutil_tz.tzoffset('BRST', -10800)),
        'tzfile': datetime.datetime(2020, 7, 1, 12, tzinfo=paris_file),
        'pytz_utc': datetime.datetime(2020, 1, 1, 12, tzinfo=pytz.utc),
        'pytz_paris': paris.localize(datetime.datetime(2020, 7, 1, 12)),
        'pytz_fixed': datetime.datetime(2020, 1, 1, tzinfo=pytz.FixedOffset(330)),
        'zoneinfo': datetime.datetime(2020, 7, 1, 12, tzinfo=paris_zi),
        'timezone': datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone(
            datetime.timedelta(hours=9), 'JST')),
    }


def _check(got, want):
    assert got == want
    assert type(got.tzinfo) is type(want.tzinfo)
    assert got.utcoffset() == want.utcoffset()
    assert got.tzname() == want.tzname()


def test_tz_datetimes_from_upstream_client(make_server, upstream_client):
    values = _values()
    server, endpoint = make_server()
    register_ours(server)
    seen = {}

    @server.register_rpc(name='tzkind')
    def tzkind(name, when):
        seen[name] = when
        return type(when.tzinfo).__module__ + '.' + type(when.tzinfo).__qualname__

    calls = []
    for name, when in sorted(values.items()):
        calls += [call('tzkind', name, when), call('add_days', when, 3), call('echo', when.tzinfo)]
    peer = upstream_client(endpoint, server.user_id, calls)
    results = peer.wait_for('results')['results']
    assert len(results) == len(calls)
    for i, (name, when) in enumerate(sorted(values.items())):
        kind, added, tz = results[3 * i: 3 * i + 3]
        # what our server decoded from upstream's pickle
        _check(seen[name], when)
        assert value_of(kind) == (type(when.tzinfo).__module__ + '.'
                                  + type(when.tzinfo).__qualname__)
        # and what upstream decoded from ours
        _check(value_of(added), when + datetime.timedelta(days=3))
        assert type(value_of(tz)[0][0]) is type(when.tzinfo)


def test_tz_datetimes_with_upstream_server(upstream_server):
    values = _values()
    peer, client = upstream_server()
    for name, when in sorted(values.items()):
        # ours -> upstream (pickle.loads there) -> ours (restricted decoder)
        echoed = client.echo(when, tz=when.tzinfo).get()
        _check(echoed[0][0], when)
        assert type(echoed[1]['tz']) is type(when.tzinfo), name
        _check(client.add_days(when, -40).get(), when - datetime.timedelta(days=40))
