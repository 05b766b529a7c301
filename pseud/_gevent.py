"""Upstream's gevent flavour lived here: ``from pseud._gevent import
Client, Server`` keeps working. pseud-native has one flavour (gevent), so
these are ``pseud.Client`` and ``pseud.Server`` themselves."""
from .client import Client
from .common import BaseRPC as GeventBaseRPC
from .server import Server

__all__ = ['Client', 'Server', 'GeventBaseRPC']
