"""Tests of pseud._pseud.Future, the gevent AsyncResult-compatible future."""
import gc
import os
import sys
import weakref

import gevent
import pytest

from pseud._pseud import Future

pytestmark = pytest.mark.timeout(10)


class Boom(Exception):
    pass


def test_set_then_get():
    f = Future()
    assert not f.ready()
    f.set(42)
    assert f.ready() and f.done() and f.successful()
    assert f.get() == 42
    assert f.get_nowait() == 42
    assert f.result() == 42
    assert f.value == 42
    assert f.exception is None
    assert f.exc_info == ()


def test_set_default_none():
    f = Future()
    f.set()
    assert f.ready()
    assert f.get() is None


def test_second_set_is_noop():
    f = Future()
    f.set(1)
    f.set(2)
    f.set_exception(Boom())
    assert f.get() == 1


def test_get_blocks_until_set():
    f = Future()
    gevent.spawn_later(0.02, f.set, 'late')
    assert f.get() == 'late'


def test_get_from_main_before_hub_started():
    # a fresh hub may already exist from other tests; this at least checks
    # get() from the main greenlet while other greenlets run meanwhile
    f = Future()
    ran = []

    def other():
        ran.append(1)
        f.set('x')

    gevent.spawn(other)
    assert f.get() == 'x'
    assert ran == [1]


def test_set_exception_instance():
    f = Future()
    exc = Boom('bad')
    f.set_exception(exc)
    assert f.ready() and not f.successful()
    assert f.exception is exc
    assert f.value is None
    with pytest.raises(Boom) as info:
        f.get()
    assert info.value is exc
    with pytest.raises(Boom) as info2:
        f.get()
    assert info2.value is exc
    assert f.exc_info[0] is Boom and f.exc_info[1] is exc


def test_set_exception_class():
    f = Future()
    f.set_exception(Boom)
    assert isinstance(f.exception, Boom)
    with pytest.raises(Boom):
        f.get()


def test_set_exception_rejects_non_exception():
    f = Future()
    with pytest.raises(TypeError):
        f.set_exception(42)
    assert not f.ready()


def test_get_timeout_then_still_works():
    f = Future()
    with pytest.raises(gevent.Timeout):
        f.get(timeout=0.05)
    assert not f.ready()
    assert 'links=0' in repr(f)
    gevent.spawn_later(0.01, f.set, 7)
    assert f.get(timeout=1) == 7


def test_get_nowait_pending():
    f = Future()
    with pytest.raises(gevent.Timeout):
        f.get_nowait()
    with pytest.raises(gevent.Timeout):
        f.get(block=False)


def test_result_timeout():
    f = Future()
    with pytest.raises(gevent.Timeout):
        f.result(timeout=0.01)


def test_wait():
    f = Future()
    assert f.wait(timeout=0.02) is None
    gevent.spawn_later(0.01, f.set, 'v')
    assert f.wait() == 'v'
    assert f.wait(0) == 'v'
    g = Future()
    g.set_exception(Boom())
    assert g.wait() is None


def test_rawlink_called_from_hub_not_inline():
    f = Future()
    calls = []
    f.rawlink(calls.append)
    f.set(1)
    assert calls == []
    gevent.sleep(0)
    assert calls == [f]


def test_rawlink_when_ready_is_scheduled():
    f = Future()
    f.set(1)
    calls = []
    f.rawlink(calls.append)
    assert calls == []
    gevent.sleep(0)
    assert calls == [f]


def test_rawlink_requires_callable():
    with pytest.raises(TypeError):
        Future().rawlink(3)


def test_unlink_prevents_call():
    f = Future()
    calls = []
    f.rawlink(calls.append)
    f.unlink(calls.append)  # equal bound method, not the same object
    f.unlink(calls.append)  # absent: silently ignored
    f.set(1)
    gevent.sleep(0)
    assert calls == []


def test_two_links_called_in_order():
    f = Future()
    calls = []
    f.rawlink(lambda fut: calls.append(('a', fut)))
    f.link(lambda fut: calls.append(('b', fut)))
    f.rawlink(lambda fut: calls.append(('c', fut)))
    f.set(1)
    gevent.sleep(0)
    assert calls == [('a', f), ('b', f), ('c', f)]
    gevent.sleep(0)
    assert len(calls) == 3  # links are one-shot


def test_unlink_during_notify():
    f = Future()
    calls = []

    def first(fut):
        calls.append('first')
        fut.unlink(second)

    def second(fut):
        calls.append('second')

    f.rawlink(first)
    f.rawlink(second)
    f.rawlink(calls.append)
    f.set(1)
    gevent.sleep(0)
    assert calls == ['first', f]


def test_link_that_raises_does_not_stop_others():
    f = Future()
    calls = []

    def bad(fut):
        raise Boom('in link')

    f.rawlink(bad)
    f.rawlink(calls.append)
    f.set(1)
    gevent.sleep(0)
    gevent.sleep(0)
    assert calls == [f]


def test_gevent_wait():
    a, b = Future(), Future()
    gevent.spawn_later(0.01, a.set, 1)
    gevent.spawn_later(0.02, b.set, 2)
    done = gevent.wait([a, b])
    assert set(done) == {a, b}
    assert a.get() == 1 and b.get() == 2


def test_gevent_iwait_order():
    a, b, c = Future(), Future(), Future()
    gevent.spawn_later(0.03, a.set, 'a')
    gevent.spawn_later(0.01, b.set, 'b')
    gevent.spawn_later(0.02, c.set, 'c')
    order = [f.get() for f in gevent.iwait([a, b, c])]
    assert order == ['b', 'c', 'a']
    for f in (a, b, c):
        assert 'links=0' in repr(f)


def test_gevent_wait_timeout_pending():
    f = Future()
    assert gevent.wait([f], timeout=0.05) == []
    assert 'links=0' in repr(f)
    f.set(1)
    gevent.sleep(0)


def test_many_waiters():
    f = Future()
    results = []

    def waiter():
        results.append(f.get())

    greenlets = [gevent.spawn(waiter) for _ in range(100)]
    # gevent stops running spawned greenlets after its switch interval and
    # polls: on a loaded machine some start only in a later loop iteration
    with gevent.Timeout(2, False):
        while 'links=100' not in repr(f):
            gevent.sleep(0.01)
    assert 'links=100' in repr(f)
    f.set('go')
    gevent.joinall(greenlets, timeout=2)
    assert results == ['go'] * 100
    assert 'links=0' in repr(f)


def test_get_interrupted_by_timeout_context():
    f = Future()
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.05):
            f.get()
    assert 'links=0' in repr(f)
    f.set(3)
    gevent.sleep(0)
    assert f.get() == 3


def test_kill_greenlet_blocked_in_get():
    f = Future()
    g = gevent.spawn(f.get)
    gevent.sleep(0.01)
    assert 'links=1' in repr(f)
    g.kill()
    assert g.dead
    assert isinstance(g.exception, gevent.GreenletExit) or g.successful()
    assert 'links=0' in repr(f)
    f.set(1)
    gevent.sleep(0)


def test_get_with_timeout_interrupted_by_kill():
    f = Future()
    g = gevent.spawn(f.get, timeout=5)
    gevent.sleep(0.01)
    g.kill()
    assert 'links=0' in repr(f)


def test_future_as_greenlet_link():
    f = Future()
    g = gevent.spawn(lambda: 'result')
    g.link(f)
    assert f.get(timeout=1) == 'result'

    f2 = Future()
    def fail():
        raise Boom('x')
    g2 = gevent.spawn(fail)
    g2.link(f2)
    with pytest.raises(Boom):
        f2.get(timeout=1)


def test_call_directly():
    class Source:
        value = 5
        exception = None

        def successful(self):
            return True

    f = Future()
    f(Source())
    assert f.get() == 5


def test_cancel_and_repr():
    f = Future()
    assert f.cancel() is False
    assert f.cancelled() is False
    assert 'pending' in repr(f)
    f.set([1])
    assert 'value=[1]' in repr(f)
    g = Future()
    g.set_exception(Boom('e'))
    assert 'exception=' in repr(g)
    h = Future()
    h.set(h)
    assert '...' in repr(h)


def test_constructor_rejects_arguments():
    with pytest.raises(TypeError):
        Future(1)


def test_subclass_and_weakref():
    class MyFuture(Future):
        def __init__(self, tag):
            self.tag = tag

    f = MyFuture('t')
    assert f.tag == 't'
    r = weakref.ref(f)
    f.set(1)
    assert f.get() == 1
    del f
    gc.collect()
    assert r() is None


def test_no_reference_leak():
    sentinel = object()
    gc.collect()
    start = sys.getrefcount(sentinel)
    for _ in range(10000):
        f = Future()
        f.set(sentinel)
        assert f.get() is sentinel
    for _ in range(1000):
        f = Future()
        f.rawlink(lambda fut: None)
        f.set(sentinel)
        assert f.get() is sentinel
        f = Future()
        f.set_exception(Boom(sentinel))
        try:
            f.get()
        except Boom:
            pass
    gevent.sleep(0)
    del f
    gc.collect()
    assert sys.getrefcount(sentinel) == start
    assert not [o for o in gc.get_objects() if type(o) is Future]


def test_no_leak_through_blocking_get():
    before = len([o for o in gc.get_objects() if type(o) is Future])
    for _ in range(200):
        f = Future()
        gevent.spawn(f.set, 1)
        f.get()
        f = Future()
        try:
            f.get(timeout=0)
        except gevent.Timeout:
            pass
    del f
    gc.collect()
    assert len([o for o in gc.get_objects() if type(o) is Future]) == before


def test_get_in_fresh_process_before_hub_started():
    import subprocess
    code = (
        "from pseud._pseud import Future\n"
        "import gevent, gevent._hub_local as hl\n"
        "assert hl.get_hub_if_exists() is None\n"
        "f = Future()\n"
        "gevent.spawn_later(0.01, f.set, 'ok')\n"
        "print(f.get(timeout=2))\n"
        "g = Future()\n"
        "try:\n"
        "    g.get(timeout=0.01)\n"
        "except gevent.Timeout:\n"
        "    print('timeout')\n"
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=8,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['ok', 'timeout']


def test_repeated_get_does_not_grow_the_traceback():
    from pseud._pseud import Future
    future = Future()
    future.set_exception(ValueError('once'))
    depths = []
    for _ in range(50):
        try:
            future.get()
        except ValueError as exc:
            tb, depth = exc.__traceback__, 0
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)
    assert depths[0] == depths[-1]
