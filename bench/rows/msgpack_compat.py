"""Shims for peers released before msgpack 1.0, which dropped the
``encoding=`` argument: 'utf-8' meant what ``raw=False`` means now."""
import msgpack

_packb, _unpackb = msgpack.packb, msgpack.unpackb
_Packer, _Unpacker = msgpack.Packer, msgpack.Unpacker


def _unpack_options(encoding, kw):
    if encoding:
        kw.setdefault('raw', False)
    return kw


def packb(obj, encoding=None, **kw):
    return _packb(obj, **kw)


def unpackb(data, encoding=None, **kw):
    return _unpackb(data, **_unpack_options(encoding, kw))


def Packer(encoding=None, **kw):
    return _Packer(**kw)


def Unpacker(file_like=None, encoding=None, **kw):
    return _Unpacker(file_like, **_unpack_options(encoding, kw))


def install():
    msgpack.packb, msgpack.unpackb = packb, unpackb
    msgpack.Packer, msgpack.Unpacker = Packer, Unpacker
