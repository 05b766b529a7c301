"""The user document's client.

    python examples/client.py [endpoint]     (default tcp://127.0.0.1:5555)
"""
import sys

import pseud

endpoint = sys.argv[1] if len(sys.argv) > 1 else 'tcp://127.0.0.1:5555'

client = pseud.Client('remote')
client.connect(endpoint)

future1 = client.lower('ABC')
future2 = client.upper('def')

assert future1.get() == 'abc'
assert future2.get() == 'DEF'
print("client.lower('ABC') ->", repr(future1.get()))
print("client.upper('def') ->", repr(future2.get()))

# 'is' is a Python keyword: reach it with getattr
named = getattr(client.this, 'is').a.name().get()
assert named == 'Done'
print("client.this.is.a.name() ->", repr(named))

client.stop()
