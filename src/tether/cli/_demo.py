"""``tether demo``: serve the demo on every built-in transport, call it, print a table.

One process: a server on every built-in transport (tcp, unix, tls with a CA and a
certificate made at run time, memory, quic, kcp, http-connect, tls+http-connect, shm);
then, over each, in tether's native protocol and in gRPC (the same listeners serve
both), every method of both demo services, each reply checked against what echo.proto /
echo.thrift promise. Exit status 1 if any row failed.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from .._client import Client
from .._config import TLSConfig
from .._exceptions import RPCError, StatusError
from .._server import Server
from .._status import Status
from ..demo._services import PROTO_SERVICE, THRIFT_SERVICE, demo_services
from ..demo._thrift import echo_thrift
from ..demo.echo_pb2 import EchoReply, EchoRequest
from ..thrift import ThriftStub
from ._certs import write_self_signed
from ._errors import EXIT_FAILED, describe_status
from ._serve import start_listeners
from ._tls import is_tls_scheme

#: How long one check may take before its row fails.
CHECK_TIMEOUT = 5.0
#: Wire protocols every transport is checked in.
PROTOCOLS = ("tether", "grpc")

Check = Callable[[Client, str], Awaitable[None]]


class CheckFailed(Exception):
    """A reply broke what the IDL comments promise."""


def expect(condition: bool, message: str) -> None:
    """Fail the current check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a check over one transport and protocol, its outcome and
    latency."""

    transport: str
    protocol: str
    method: str
    error: str | None
    latency_ms: float


# -- the checks ----------------------------------------------------------------------------


async def _connect(client: Client, transport: str) -> None:
    await client.connect()


async def _proto_unary(client: Client, transport: str) -> None:
    metadata: dict[str, str | bytes] = {"x-demo": transport, "x-trace-bin": b"\x00\x01\x02"}
    reply = await client.unary(
        f"{PROTO_SERVICE}/Unary",
        EchoRequest(data=b"tether", repeat=3),
        response_type=EchoReply,
        metadata=metadata,
    )
    expect(reply.data == b"tether" * 3, f"data {reply.data!r}, want b'tether' x3")
    expect(reply.metadata.get("x-demo") == transport, f"metadata {dict(reply.metadata)}")
    expect(
        reply.metadata.get("x-trace-bin") == base64.b64encode(b"\x00\x01\x02").decode(),
        f"-bin metadata {reply.metadata.get('x-trace-bin')!r}, want base64 of 00 01 02",
    )


async def _proto_server_stream(client: Client, transport: str) -> None:
    call = client.server_stream(
        f"{PROTO_SERVICE}/ServerStream",
        EchoRequest(data=b"tick", repeat=3),
        response_type=EchoReply,
    )
    data = [reply.data async for reply in call]
    expect(data == [b"tick"] * 3, f"replies {data!r}, want 3 x b'tick'")


async def _proto_client_stream(client: Client, transport: str) -> None:
    call = client.client_stream(
        f"{PROTO_SERVICE}/ClientStream", request_type=EchoRequest, response_type=EchoReply
    )
    for chunk in (b"con", b"cat", b"enated"):
        await call.send(EchoRequest(data=chunk))
    reply = await call.response()
    expect(reply.data == b"concatenated", f"data {reply.data!r}, want b'concatenated'")


async def _proto_bidi_stream(client: Client, transport: str) -> None:
    async with client.bidi_stream(
        f"{PROTO_SERVICE}/BidiStream", request_type=EchoRequest, response_type=EchoReply
    ) as call:
        for chunk in (b"ping", b"pong", b"pang"):
            await call.send(EchoRequest(data=chunk))
            reply = await call.recv()
            expect(reply is not None and reply.data == chunk, f"reply {reply!r} to {chunk!r}")
        await call.done_writing()
        expect(await call.recv() is None, "more replies than requests")


async def _proto_fail(client: Client, transport: str) -> None:
    try:
        await client.unary(
            f"{PROTO_SERVICE}/Unary",
            EchoRequest(data=b"x", fail="expected failure"),
            response_type=EchoReply,
        )
    except StatusError as exc:
        expect(
            exc.status is Status.INVALID_ARGUMENT and exc.message == "expected failure",
            f"got {describe_status(exc)!r}, want 'INVALID_ARGUMENT: expected failure'",
        )
    else:
        raise CheckFailed("the call succeeded, want INVALID_ARGUMENT")


def _thrift(client: Client) -> ThriftStub:
    return ThriftStub(client, echo_thrift.Echo, name=THRIFT_SERVICE)


async def _thrift_unary(client: Client, transport: str) -> None:
    reply = await _thrift(client).Unary(
        req=echo_thrift.EchoRequest(data=b"thrift", repeat=2), metadata={"x-demo": transport}
    )
    expect(reply.data == b"thrift" * 2, f"data {reply.data!r}, want b'thrift' x2")
    expect((reply.metadata or {}).get("x-demo") == transport, f"metadata {reply.metadata}")


async def _thrift_fail(client: Client, transport: str) -> None:
    try:
        await _thrift(client).Unary(req=echo_thrift.EchoRequest(fail="expected failure"))
    except echo_thrift.EchoError as exc:
        expect(
            exc.code == 3 and exc.message == "expected failure",
            f"got {exc!r}, want EchoError(message='expected failure', code=3)",
        )
    else:
        raise CheckFailed("the call succeeded, want EchoError")


async def _thrift_notify(client: Client, transport: str) -> None:
    stub = _thrift(client)
    marker = f"hello from {transport}"
    await stub.Notify(req=echo_thrift.EchoRequest(data=marker.encode()))
    reply = await stub.Unary(req=echo_thrift.EchoRequest(data=b"x"))
    notified = (reply.metadata or {}).get("notified")
    expect(notified == marker, f"metadata 'notified' = {notified!r}, want {marker!r}")


CHECKS: tuple[tuple[str, Check], ...] = (
    ("connect", _connect),
    (f"{PROTO_SERVICE}/Unary + metadata", _proto_unary),
    (f"{PROTO_SERVICE}/ServerStream x3", _proto_server_stream),
    (f"{PROTO_SERVICE}/ClientStream x3", _proto_client_stream),
    (f"{PROTO_SERVICE}/BidiStream x3", _proto_bidi_stream),
    (f"{PROTO_SERVICE}/Unary fail -> INVALID_ARGUMENT", _proto_fail),
    (f"{THRIFT_SERVICE}/Unary (thrift)", _thrift_unary),
    (f"{THRIFT_SERVICE}/Unary fail -> EchoError", _thrift_fail),
    (f"{THRIFT_SERVICE}/Notify, then Unary sees it", _thrift_notify),
)


# -- running -------------------------------------------------------------------------------


def _describe(exc: Exception) -> str:
    if isinstance(exc, StatusError):
        return describe_status(exc)
    if isinstance(exc, CheckFailed):
        return f"wrong reply: {exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g}s"
    return f"{type(exc).__name__}: {exc}"


async def _run_checks(url: str, ca: Path, protocol: str) -> list[Row]:
    """Every check over ``url`` in ``protocol``, in order (a TLS URL trusts the demo CA)."""
    transport = url.partition("://")[0]
    tls = TLSConfig(ca=ca) if is_tls_scheme(transport) else None
    rows = []
    async with Client(url, protocol=protocol, tls=tls) as client:
        for name, check in CHECKS:
            error = None
            started = time.perf_counter()
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await check(client, transport)
            except Exception as exc:
                error = _describe(exc)
            elapsed = (time.perf_counter() - started) * 1000
            rows.append(Row(transport, protocol, name, error, elapsed))
    return rows


async def run_demo() -> int:
    """Serve, call, print the table; return 0 if every row is ok, else 1."""
    with tempfile.TemporaryDirectory(prefix="tether-demo-") as tmp:
        directory = Path(tmp)
        certs = write_self_signed(directory)
        urls = (
            "tcp://127.0.0.1:0",
            f"unix://{directory / 'demo.sock'}",
            f"shm://{directory / 'demo-shm.sock'}",
            "tls://127.0.0.1:0",
            "memory://demo",
            "quic://127.0.0.1:0",
            "kcp://127.0.0.1:0",
            "http-connect://127.0.0.1:0",
            "tls+http-connect://127.0.0.1:0",
        )
        server = Server(demo_services())
        try:
            await start_listeners(server, urls, TLSConfig(cert=certs.cert, key=certs.key))
            print("tether demo: serving tether.demo.Echo and Echo on")
            for address in server.addresses:
                print(f"  {address}")
            print(flush=True)
            rows = [
                row
                for address in server.addresses
                for protocol in PROTOCOLS
                for row in await _run_checks(address, certs.ca, protocol)
            ]
        except (RPCError, OSError) as exc:  # the checks catch their own errors: this is start()
            print(f"tether demo: cannot serve: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        finally:
            server.close()
            await server.wait_closed()
    print(format_table(rows))
    failed = sum(row.error is not None for row in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} ok", flush=True)
    return EXIT_FAILED if failed else 0


def _marks() -> tuple[str, str]:
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAIL"
    return "✓", "✗"


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table: transport, protocol, method, ok, latency."""
    good, bad = _marks()
    header = ("transport", "protocol", "method", "ok", "latency")
    cells = [
        (
            row.transport,
            row.protocol,
            row.method,
            good if row.error is None else f"{bad} {row.error}",
            f"{row.latency_ms:.2f} ms",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(5)]

    def line(values: tuple[str, str, str, str, str]) -> str:
        left = "  ".join(v.ljust(w) for v, w in zip(values[:4], widths, strict=False))
        return f"{left}  {values[4].rjust(widths[4])}"

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in cells)])
