"""shm:// (shared-memory rings over a Unix control socket) passes the whole conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, check_transport

#: name -> URL template. ``{dir}``: a short temp dir; ``{id}``: a unique name.
URLS: dict[str, str] = {
    "shm": "shm://{dir}/conformance.sock",
    # A small ring, so large writes, backpressure and ordering run through the socket
    # fallback and the switches between the two paths.
    "shm-small-ring": "shm://{dir}/small.sock?ring=4096",
    "shm-abstract": "shm://@tether-shm-{id}",
}
#: abort() ends the control socket and the rings: the peer must see a loss, not EOF.
ADAPTER = TransportAdapter(reports_loss=True)


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
@pytest.mark.parametrize("kind", list(URLS))
async def test_conformance(kind: str, check: str, sock_dir: Path, unique: str) -> None:
    """The shm transport passes the named conformance check (every check applies)."""
    url = URLS[kind].format(dir=sock_dir, id=unique)
    report = await check_transport(url, checks=[check], adapter=ADAPTER)
    assert report.passed == (check,), f"{check} was skipped: {report.skipped}"
