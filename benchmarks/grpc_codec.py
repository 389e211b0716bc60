"""``python -m benchmarks.grpc_codec``: tether's gRPC codec against ``h2`` at the codec level.

No sockets and no event loop: both ends of one connection run in this process and bytes
are handed over directly, so the figures are pure protocol CPU cost. Scenarios:

* ``unary``: one call (request HEADERS + DATA, response HEADERS + DATA + trailers),
  client and server work together, µs per call;
* ``server_side``: only the server's share of a unary call (parse the request, build the
  response), µs per call, and the Python bytecodes it executes;
* ``concurrent``: 100 calls opened at once on one connection, then answered, µs per call;
* ``large``: one 1 MiB message each way, MB/s.

The h2 side does what a minimal gRPC layer over h2 must do (grpclib's path): headers
as lists, Length-Prefixed-Messages framed by hand, flow-control acknowledgements.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import h2.config
import h2.connection
import h2.events

from tether import Status
from tether.framing import CallStarted, Message, Role, Trailers
from tether.framing.grpc import GrpcCodec

PAYLOAD = b"x" * 64
BIG = b"y" * (1024 * 1024)
REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/bench.Echo/Echo"),
    (":authority", "localhost"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]
RESPONSE_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]
TRAILERS = [("grpc-status", "0")]


def lpm(data: bytes) -> bytes:
    return struct.pack(">BL", 0, len(data)) + data


# -- tether ------------------------------------------------------------------------------


def tether_pair() -> tuple[GrpcCodec, GrpcCodec]:
    client, server = GrpcCodec(Role.CLIENT), GrpcCodec(Role.SERVER)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def tether_calls(client: GrpcCodec, server: GrpcCodec, n: int, data: bytes) -> None:
    """``n`` unary calls opened together, then answered together."""
    for _ in range(n):
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="bench.Echo", method="Echo"))
        client.send(Message(stream_id=sid, data=data, end_stream=True))
    for event in server.receive_data(client.data_to_send()):
        if type(event) is Message:
            server.send(Message(stream_id=event.stream_id, data=event.data))
            server.send(Trailers(stream_id=event.stream_id, status=Status.OK))
    for event in client.receive_data(server.data_to_send()):
        if type(event) is Message:
            client.acknowledge_received(event.stream_id, len(event.data))
    server.receive_data(client.data_to_send())


# -- h2 ----------------------------------------------------------------------------------


def h2_pair() -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    for conn in (client, server):  # a big connection window, as GrpcCodec opens one
        conn.increment_flow_control_window(2**30)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def h2_calls(
    client: h2.connection.H2Connection, server: h2.connection.H2Connection, n: int, data: bytes
) -> None:
    """The same exchange with h2 on both sides (chunked by the windows, as h2 requires)."""
    pending: dict[int, bytes] = {}
    for _ in range(n):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, REQUEST_HEADERS)
        pending[sid] = lpm(data)
    bodies: dict[int, bytearray] = {}
    replies: dict[int, bytes] = {}
    while pending or replies:
        for sid in list(pending):
            chunk = pending[sid]
            take = min(
                len(chunk), client.local_flow_control_window(sid), client.max_outbound_frame_size
            )
            if take:
                client.send_data(sid, chunk[:take], end_stream=take == len(chunk))
                if take == len(chunk):
                    del pending[sid]
                else:
                    pending[sid] = chunk[take:]
        for event in server.receive_data(client.data_to_send()):
            if isinstance(event, h2.events.DataReceived):
                bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                body = bodies.pop(event.stream_id)
                server.send_headers(event.stream_id, RESPONSE_HEADERS)
                replies[event.stream_id] = lpm(bytes(body[5:]))
        for sid in list(replies):
            chunk = replies[sid]
            take = min(
                len(chunk), server.local_flow_control_window(sid), server.max_outbound_frame_size
            )
            if take:
                server.send_data(sid, chunk[:take])
                if take == len(chunk):
                    del replies[sid]
                    server.send_headers(sid, TRAILERS, end_stream=True)
                else:
                    replies[sid] = chunk[take:]
        for event in client.receive_data(server.data_to_send()):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        server.receive_data(client.data_to_send())


# -- measuring ---------------------------------------------------------------------------


def times_each(run: Callable[[bytes], None], items: list[bytes]) -> None:
    """``run(item)`` for every item."""
    for item in items:
        run(item)


def times(k: int, run: Callable[..., None], *args: Any) -> None:
    """``run(*args)``, ``k`` times."""
    for _ in range(k):
        run(*args)


def per_call(run: Callable[[], object], calls: int, repeat: int = 5) -> float:
    """Best µs per call over ``repeat`` runs of ``run`` (which makes ``calls`` calls)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def count_bytecodes(run: Callable[[], object]) -> int:
    """Python bytecodes executed by ``run`` (every frame, tracing opcodes)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return count


def server_side_tether(calls: int) -> tuple[float, int]:
    client, server = tether_pair()
    requests = []
    for _ in range(calls + 2):
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="bench.Echo", method="Echo"))
        client.send(Message(stream_id=sid, data=PAYLOAD, end_stream=True))
        requests.append(client.data_to_send())

    def one(request: bytes) -> None:
        for event in server.receive_data(request):
            if type(event) is Message:
                server.send(Message(stream_id=event.stream_id, data=event.data))
                server.send(Trailers(stream_id=event.stream_id, status=Status.OK))
        server.data_to_send()

    one(requests[0])  # a long-lived connection has its caches warm
    codes = count_bytecodes(lambda: one(requests[1]))
    us = per_call(lambda: times_each(one, requests[2:]), calls, repeat=1)
    return us, codes


def server_side_h2(calls: int) -> tuple[float, int]:
    client, server = h2_pair()
    requests = []
    for _ in range(calls + 2):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, REQUEST_HEADERS)
        client.send_data(sid, lpm(PAYLOAD), end_stream=True)
        requests.append(client.data_to_send())
        client.reset_stream(sid)  # forget it (h2 allows 100 open); the reset is not sent
        client.data_to_send()

    def one(request: bytes) -> None:
        body = b""
        for event in server.receive_data(request):
            if isinstance(event, h2.events.DataReceived):
                server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                body = event.data
            elif isinstance(event, h2.events.StreamEnded):
                server.send_headers(event.stream_id, RESPONSE_HEADERS)
                server.send_data(event.stream_id, lpm(body[5:]))
                server.send_headers(event.stream_id, TRAILERS, end_stream=True)
        server.data_to_send()

    one(requests[0])
    codes = count_bytecodes(lambda: one(requests[1]))
    us = per_call(lambda: times_each(one, requests[2:]), calls, repeat=1)
    return us, codes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grpc_codec")
    parser.add_argument("--calls", type=int, default=2000, help="calls per measured run")
    args = parser.parse_args(argv)
    n = args.calls
    rows: list[tuple[str, str, float, float]] = []

    t = tether_pair()
    h = h2_pair()
    rows.append(
        (
            "unary, sequential",
            "µs/call",
            per_call(lambda: times(n, tether_calls, *t, 1, PAYLOAD), n),
            per_call(lambda: times(n // 4, h2_calls, *h, 1, PAYLOAD), n // 4),
        )
    )
    rows.append(
        (
            "100 concurrent calls",
            "µs/call",
            per_call(lambda: times(n // 100, tether_calls, *t, 100, PAYLOAD), n),
            per_call(lambda: times(n // 400, h2_calls, *h, 100, PAYLOAD), n // 4),
        )
    )
    big_t = per_call(lambda: tether_calls(*t, 1, BIG), 1)
    big_h = per_call(lambda: h2_calls(*h, 1, BIG), 1)
    rows.append(("1 MiB echo", "MB/s", 2 * 1.048576e6 / big_t, 2 * 1.048576e6 / big_h))
    us_t, codes_t = server_side_tether(1000)
    us_h, codes_h = server_side_h2(1000)
    rows.append(("server side of a unary call", "µs/call", us_t, us_h))
    rows.append(("server side of a unary call", "bytecodes", codes_t, codes_h))

    print(f"{'scenario':32} {'unit':10} {'tether':>10} {'h2':>10} {'ratio':>8}")
    for name, unit, ours, theirs in rows:
        better = theirs / ours if unit != "MB/s" else ours / theirs
        print(f"{name:32} {unit:10} {ours:10.1f} {theirs:10.1f} {better:7.1f}x")


if __name__ == "__main__":
    main()
