"""pseud: RPC over ZeroMQ with msgpack, cooperative with gevent; native core."""
