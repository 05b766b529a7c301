"""msgpack serialisation of pseud messages.

``Packer`` encodes Python objects to msgpack and back; objects msgpack cannot
carry natively go through its translation table of ext types (datetime
objects by default, as pickles decoded by a restricted unpickler). ``ExtType``
is what an ext type without a handler decodes to.
"""
from ._pseud import ExtType, Packer

__all__ = ['Packer', 'ExtType']
