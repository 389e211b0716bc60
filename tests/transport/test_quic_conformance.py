"""quic:// passes the whole transport conformance suite (IPv4 and IPv6 loopback)."""

from __future__ import annotations

import pytest

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, check_transport

from .conftest import Certs, have_ipv6

#: Short idle timeouts keep a failing check from hanging on a silent peer.
URLS = {
    "quic": "quic://127.0.0.1:0?idle_timeout=5",
    "quic-ipv6": "quic://[::1]:0?idle_timeout=5",
    # Loopback's MTU allows large datagrams: the server side sends 16000-byte ones.
    "quic-jumbo": "quic://127.0.0.1:0?idle_timeout=5&max_datagram_size=16000",
}
#: abort() sends CONNECTION_CLOSE with an application error: the peer sees a loss.
ADAPTER = TransportAdapter(reports_loss=True)


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
@pytest.mark.parametrize("kind", list(URLS))
async def test_quic_conformance(kind: str, check: str, certs: Certs) -> None:
    """quic:// passes the named conformance check."""
    if kind.endswith("ipv6") and not have_ipv6():
        pytest.skip("IPv6 loopback is unavailable")
    report = await check_transport(
        URLS[kind],
        listen_options=certs.listen(),
        connect_options=certs.connect(),
        checks=[check],
        large_size=4 << 20,
        adapter=ADAPTER,
    )
    assert report.passed == (check,), f"{check} was skipped: {report.skipped}"
