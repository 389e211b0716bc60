"""Helpers for the CLI tests: run ``tether`` and ``tether serve demo`` as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

#: ``python -m tether``: the same entry point as the ``tether`` script.
TETHER = (sys.executable, "-m", "tether")

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_tether(*args: str | Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``tether ARGS...`` to completion, capturing text output."""
    return subprocess.run(
        [*TETHER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


@dataclass
class ServeProcess:
    """A running ``tether serve demo`` and the addresses it printed."""

    process: subprocess.Popen[str]
    addresses: list[str]
    terminated: bool = False

    def address(self, scheme: str) -> str:
        """The printed address with this scheme."""
        return next(a for a in self.addresses if a.startswith(f"{scheme}://"))

    def terminate(self) -> None:
        """Send SIGTERM once (a second one would kill the process while it exits)."""
        if not self.terminated and self.process.poll() is None:
            self.terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> tuple[int, str]:
        """SIGTERM (unless already sent), wait; return the exit status and the rest of stderr."""
        self.terminate()
        _, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, err


def start_serve(*args: str | Path) -> ServeProcess:
    """Start ``tether serve demo ARGS...`` and read one address line per ``--listen``."""
    argv = [*TETHER, "serve", "demo", *map(str, args)]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    addresses = []
    for _ in range(argv.count("--listen")):
        line = process.stdout.readline().strip()
        if not line:
            _, err = process.communicate(timeout=15)
            pytest.fail(f"tether serve exited with {process.returncode}: {err}")
        addresses.append(line)
    return ServeProcess(process, addresses)


@dataclass(frozen=True)
class Certs:
    """PEM files made by trustme: one CA, a server cert for 127.0.0.1, a client cert."""

    ca: Path
    server: Path
    client_cert: Path
    client_key: Path
