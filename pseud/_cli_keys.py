"""CURVE keys on the command line (``pseud call``, ``serve``, ``broker``):
argparse types that check a key is Z85 text of a 32-byte key, so a wrong
key is a usage error that names its option, not a failed handshake later.

Keys are given as their Z85 text, as ``pseud.curve_keypair()`` returns
them. Z85 has ``-`` in its alphabet: give a key as ``--option=KEY`` so
that one beginning with ``-`` is not taken for an option.
"""
from __future__ import annotations

import argparse

from . import _pseud

KEY_BYTES = 32
KEY_TEXT = 40       # Z85: 5 characters for every 4 bytes


def curve_key(text: str) -> str:
    """A Z85 CURVE key (40 characters), unchanged."""
    try:
        ok = len(text) == KEY_TEXT and len(_pseud.z85_decode(text)) == KEY_BYTES
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            'expected a %d-character Z85 CURVE key (as pseud.curve_keypair() makes), '
            'not %r' % (KEY_TEXT, text))
    return text


def named_key(text: str) -> tuple[str, str]:
    """``NAME=KEY``: a name (not empty) and a Z85 CURVE public key."""
    name, sep, key = text.partition('=')
    if not sep or not name:
        raise argparse.ArgumentTypeError('expected NAME=KEY, not %r' % (text,))
    return name, curve_key(key)
