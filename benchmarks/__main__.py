"""``python -m benchmarks``: tether's native protocol over TCP against a raw asyncio echo,
and tether's gRPC against grpcio and grpclib.

Figures (median and min-max of several runs, after a warm-up): sequential 64-byte calls
(calls/s, p50/p99 latency), 100 concurrent 64-byte calls on one connection (calls/s),
sequential 1 MiB echoes (MB/s) and each server process's peak RSS. The table shows the
ratio tether/ceiling and the targets, then tether's gRPC against grpcio (``grpc.aio``)
and grpclib with the 2x targets; every run is written to
``bench-results/bench-<timestamp>.json``.

``--quick`` is a short smoke run (a few hundred calls). The server subprocesses run
``benchmarks._serve``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path

from . import _report, _runner


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark tether (native protocol, TCP) against a raw asyncio echo ceiling.",
    )
    default_loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--calls", type=int, default=None, help="--quick: sequential calls per run (default 500)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the client to the first CPU and the servers to the others",
    )
    parser.add_argument("--runs", type=int, default=None, help="measured runs per scenario")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default=default_loop, help="event loop"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=_runner.ROOT / "bench-results",
        help="where the JSON record goes (default: bench-results/)",
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=_runner.SYSTEMS,
        default=list(_runner.SYSTEMS),
        help="which systems to measure (default: all)",
    )
    args = parser.parse_args(argv)
    if args.calls is not None and args.calls < 1:
        parser.error("--calls must be positive")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = (
        _runner.Config.quick(args.loop, args.calls)
        if args.quick
        else _runner.Config(loop=args.loop)
    )
    if args.runs is not None:
        config = dataclasses.replace(config, runs=args.runs)
    config = dataclasses.replace(config, systems=tuple(args.systems), pin=args.pin)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = _report.now_iso()
    measured = _runner.run_all(config, log)
    record = {
        "started": started,
        "mode": "quick" if args.quick else "full",
        "machine": _runner.machine_info(args.loop),
        "config": dataclasses.asdict(config),
        **measured,
    }
    record["verdicts"] = _report.verdicts(record["figures"])
    path = _report.write_json(record, args.out_dir)
    print(_report.table(record))
    grpc = _report.grpc_table(record)
    if grpc:
        print()
        print(grpc)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
