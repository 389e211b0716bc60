"""``tether bench``: measure transports x protocols against the Python peers, in one run."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .._version import __version__
from . import _plots, _report, _runner, _systems
from ._loops import default_loop, loop_description


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tether bench`` options (shared by the CLI and ``python -m tether.bench``)."""
    parser.add_argument(
        "--transports",
        nargs="+",
        metavar="SCHEME",
        help=f"transports to measure (default: those of {', '.join(_systems.TRANSPORTS)} "
        "that are registered)",
    )
    parser.add_argument(
        "--protocols",
        nargs="+",
        metavar="NAME",
        help=f"protocols to measure (default: those of {', '.join(_systems.PROTOCOLS)} "
        "that are registered)",
    )
    parser.add_argument(
        "--peers",
        nargs="*",
        metavar="PEER",
        choices=_systems.PEERS,
        help="also measure these peers in the same run (no names: all of "
        f"{', '.join(_systems.PEERS)})",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw asyncio ceiling")
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        metavar="N",
        help="also hold N idle connections on one server (default 10000 in a full run, "
        "0 to skip; --quick: skipped)",
    )
    parser.add_argument("--scale-active", type=int, default=1000, metavar="N")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--calls", type=int, default=None, help="--quick: calls per run")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per system")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cap on each scenario of one run (default 3; slow systems make fewer calls)",
    )
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=default_loop())
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="JSON and PNGs go here"
    )
    parser.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the table as Markdown to FILE"
    )


def plan(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The systems to measure, in table order, and the ones skipped (with the reason)."""
    from ..framing import registered_framings
    from ..transport import registered_schemes

    schemes = set(registered_schemes())
    framings = {f.name for f in registered_framings()}
    transports = args.transports or [t for t in _systems.TRANSPORTS if t in schemes]
    protocols = args.protocols or [p for p in _systems.PROTOCOLS if p in framings]
    keys: list[str] = [] if args.no_ceiling else ["ceiling"]
    skipped: dict[str, str] = {}
    for transport in transports:
        for protocol in protocols:
            key = _systems.system_key(transport, protocol)
            reason = _systems.tether_missing(transport, protocol)
            if reason is None:
                keys.append(key)
            else:
                skipped[key] = reason
    if args.peers is not None:
        for peer in args.peers or _systems.PEERS:
            reason = _systems.peer_missing(peer)
            if reason is None:
                keys.append(f"peer/{peer}")
            else:
                skipped[f"peer/{peer}"] = reason
    return keys, skipped


def machine_info(loop: str) -> dict[str, Any]:
    commit = ""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu_model": _runner.cpu_info(),
        "cpus_usable": _runner.usable_cpus(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loop": loop_description(loop),
        "tether_version": __version__,
        "git_commit": commit,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; print the table; write JSON and plots."""
    config = (
        _runner.Config.quick(args.loop, args.calls)
        if args.quick
        else _runner.Config(loop=args.loop)
    )
    if args.runs is not None:
        config = dataclasses.replace(config, runs=args.runs)
    if args.max_seconds is not None:
        config = dataclasses.replace(config, max_seconds=args.max_seconds)
    keys, skipped = plan(args)
    scale_n = args.scale if args.scale is not None else (0 if args.quick else 10_000)
    record: dict[str, Any] = {
        "started": _report.now_iso(),
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(args.loop),
        "config": dataclasses.asdict(config),
        "systems": keys,
        "skipped": skipped,
    }
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        certs = _systems.make_certs(scratch)
        record.update(_runner.run_matrix(config, keys, scratch / "servers", scratch))
        if scale_n > 0:
            from ._scale import run_scale

            print(f"scale: opening {scale_n:,} connections...", file=sys.stderr, flush=True)
            try:
                record["scale"] = run_scale(
                    args.loop,
                    scale_n,
                    min(args.scale_active, scale_n),
                    5.0,
                    scratch / "scale",
                    certs.ca.parent,
                )
            except Exception as exc:
                record["scale"] = {"error": f"{type(exc).__name__}: {exc}"}
    record["verdicts"] = _report.verdicts(record["figures"], record.get("scale"))
    path = _report.write_json(record, args.out)
    print(_report.table(record))
    print(f"\nrecord: {path}")
    if args.markdown is not None:
        args.markdown.write_text(_report.markdown(record))
    if not args.no_plots:
        plots = _plots.plot(record, args.out)
        if plots:
            print("plots: " + ", ".join(str(p) for p in plots))
    return 1 if record["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
