"""A stopped server process (SIGSTOP: its socket stays open, nothing answers) is found by
the client's heartbeat: the pending call fails promptly with UNAVAILABLE."""

from __future__ import annotations

import asyncio
import signal

import tether
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from .helpers import start_serve

HANG_GUARD = 30.0


async def test_heartbeat_detects_a_stopped_server() -> None:
    """SIGSTOP the server mid-call: the call fails with UNAVAILABLE (heartbeat), though it
    has no deadline; after SIGCONT the client reconnects and calls work again."""
    serve = start_serve("--listen", "tcp://127.0.0.1:0")
    try:
        url = serve.address("tcp")
        client = tether.Client(url, keepalive=tether.KeepaliveConfig(interval=0.2, timeout=0.5))
        async with client:
            reply = await client.unary(
                "tether.demo.Echo/Unary", EchoRequest(data=b"up"), response_type=EchoReply
            )
            assert reply.data == b"up"
            serve.process.send_signal(signal.SIGSTOP)
            try:
                async with asyncio.timeout(HANG_GUARD):
                    try:
                        await client.unary(
                            "tether.demo.Echo/Unary",
                            EchoRequest(data=b"anyone?"),
                            response_type=EchoReply,
                        )
                    except tether.StatusError as exc:
                        error = exc
                    else:
                        raise AssertionError("a stopped server answered")
            finally:
                serve.process.send_signal(signal.SIGCONT)
            assert error.status is tether.Status.UNAVAILABLE
            assert "keepalive failed" in error.message
            reply = await client.unary(
                "tether.demo.Echo/Unary", EchoRequest(data=b"back"), response_type=EchoReply
            )
            assert reply.data == b"back"
    finally:
        code, err = serve.stop()
    assert code == 0, err
