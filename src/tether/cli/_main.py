"""The ``tether`` command line: argparse wiring and the event loop (uvloop when installed)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .._compiled import describe_build
from .._version import __version__
from ._errors import EXIT_USAGE, UsageError

T = TypeVar("T")

_EPILOG = """\
examples:
  tether serve demo --listen tcp://127.0.0.1:8972 --listen unix:///tmp/tether.sock
  tether call tcp://127.0.0.1:8972 tether.demo.Echo/Unary --data '{"data": "aGk=", "repeat": 2}'
  tether call tcp://127.0.0.1:8972 Echo/Unary --data '{"req": {"data": "aGk="}}'
  tether call --protocol grpc tcp://127.0.0.1:50051 pkg.Service/Method \
      --proto-module ./service_pb2.py --data '{"name": "ada"}'
  tether demo
  tether bench --peers --transports tcp unix --protocols tether grpc
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``tether`` argument parser with its ``serve``, ``call`` and ``demo`` commands."""
    parser = argparse.ArgumentParser(
        prog="tether",
        description="tether: an RPC framework with a pluggable transport layer.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"tether {__version__}, {describe_build()}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve the demo services until SIGINT/SIGTERM",
        description="Serve both demo services (tether.demo.Echo and the Thrift Echo) on "
        "every --listen URL; print each bound address on stdout; on SIGINT/SIGTERM drain "
        "gracefully (in-flight calls get --grace seconds) and exit 0.",
    )
    serve.add_argument("what", choices=["demo"], help="what to serve")
    serve.add_argument(
        "--listen",
        action="append",
        required=True,
        metavar="URL",
        help="tcp://HOST:PORT, unix:///PATH, tls://HOST:PORT, tls+unix:///PATH, memory://NAME, "
        "kcp://HOST:PORT, shm:///PATH (repeatable; port 0 picks a free port)",
    )
    serve.add_argument("--cert", type=Path, metavar="FILE", help="PEM server certificate (TLS)")
    serve.add_argument("--key", type=Path, metavar="FILE", help="PEM private key for --cert")
    serve.add_argument(
        "--cacert",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle: require client certificates signed by it (mTLS)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="run N worker processes on the same port(s) (SO_REUSEPORT; TCP-based URLs), "
        "restart any that dies, drain them all on SIGINT/SIGTERM",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--grace",
        type=_non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="how long in-flight calls may run after a signal (default: 5)",
    )

    call = commands.add_parser(
        "call",
        help="call one method; print each reply as a JSON line",
        description="Call SERVICE/METHOD at URL. One --data JSON object per request message "
        "(exactly one for unary and server-streaming methods). Each reply is printed as "
        "one compact JSON line (protobuf's JSON mapping, bytes as base64). On failure prints "
        "'STATUS: message' on stderr and exits 1; usage errors exit 2. Known services: "
        "tether.demo.Echo, Echo (Thrift), and every service of --thrift files and "
        "--proto-module modules. With --protocol grpc it calls any gRPC server.",
    )
    call.add_argument("url", metavar="URL", help="server address, e.g. tcp://127.0.0.1:8972")
    call.add_argument("method", metavar="SERVICE/METHOD", help="e.g. tether.demo.Echo/Unary")
    call.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="JSON",
        help="one request message (repeatable); for Thrift, the arguments object "
        '({"req": {...}}) or, for a one-argument method, the argument itself',
    )
    call.add_argument(
        "--metadata",
        "-H",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request metadata (repeatable); values of KEY-bin keys are base64",
    )
    call.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="deadline of the whole call (DEADLINE_EXCEEDED when it passes)",
    )
    call.add_argument(
        "--protocol",
        default="tether",
        metavar="NAME",
        help="wire protocol: tether (default), grpc, or another registered framing",
    )
    call.add_argument(
        "--cacert", type=Path, metavar="FILE", help="PEM CA bundle to verify the server"
    )
    call.add_argument("--cert", type=Path, metavar="FILE", help="PEM client certificate (mTLS)")
    call.add_argument("--key", type=Path, metavar="FILE", help="PEM private key for --cert")
    call.add_argument(
        "--server-name", metavar="NAME", help="name to verify the server certificate against"
    )
    call.add_argument(
        "--thrift",
        action="append",
        default=[],
        type=Path,
        metavar="IDL_FILE",
        help="load the services of a Thrift IDL file (repeatable)",
    )
    call.add_argument(
        "--proto-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="load the services of a protoc-generated *_pb2 module: a dotted module name "
        "or a .py file (repeatable)",
    )

    commands.add_parser(
        "demo",
        help="serve the demo on tcp, unix, tls and memory, call every method, print a table",
        description="In one process: serve the demo services on tcp, unix, tls (certificates "
        "made at run time) and memory, call every method over each, check the replies against "
        "the IDL, and print a table. Exits 1 if any call failed.",
    )
    bench = commands.add_parser(
        "bench",
        help="measure every transport x protocol (and the Python peers): table, JSON, plots",
        description="Measure, for each transport x protocol, sequential 64 B calls (calls/s, "
        "p50, p99), 100 concurrent 64 B calls on one connection, 1 MiB echo (MB/s), CPU and "
        "server RSS; with --peers also grpcio, grpclib and thriftpy2, and always the raw "
        "asyncio ceiling. Client and server of each system run in their own processes.",
    )
    from ..bench import add_arguments as add_bench_arguments

    add_bench_arguments(bench)
    return parser


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a uvloop event loop when uvloop is installed, else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result: T = runner.run(main)
        return result


def _dispatch(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    if args.command == "serve":
        from ._serve import serve_demo
        from ._tls import server_tls

        tls = server_tls(args.listen, args.cert, args.key, args.cacert)
        if args.workers is not None:
            from ._workers import supervise, worker_command

            return supervise(worker_command(args), args.listen, args.workers)
        return serve_demo(args.listen, tls, args.grace, worker=args.worker)
    if args.command == "call":
        from ._call import CallOptions, run_call

        return run_call(
            CallOptions(
                url=args.url,
                method=args.method,
                data=args.data,
                metadata=args.metadata,
                timeout=args.timeout,
                protocol=args.protocol,
                cacert=args.cacert,
                cert=args.cert,
                key=args.key,
                server_name=args.server_name,
                thrift=args.thrift,
                proto_modules=args.proto_module,
            )
        )
    from ._demo import run_demo

    return run_demo()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command; return its exit status (0 ok, 1 failed, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"
    if args.command == "bench":  # synchronous: it orchestrates processes, not coroutines
        from ..bench import run as run_bench

        return run_bench(args)
    try:
        return run(_dispatch(args))
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
