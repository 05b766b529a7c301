"""The user document's server: str.lower registered locally, str.upper
globally, and a callable under a dotted name.

    python examples/server.py [endpoint]     (default tcp://127.0.0.1:5555)
"""
import sys

import gevent

import pseud
from pseud.utils import register_rpc

endpoint = sys.argv[1] if len(sys.argv) > 1 else 'tcp://127.0.0.1:5555'

server = pseud.Server('remote')
bound = server.bind(endpoint)

# register locally for this server only
server.register_rpc(str.lower)
# register globally for all rpc instances
register_rpc(str.upper)


@register_rpc('this.is.a.name')
def call_me() -> str:
    return 'Done'


server.start()
print('server listening on', bound, flush=True)
gevent.wait()
