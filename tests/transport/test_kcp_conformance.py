"""``kcp://`` and ``tls+kcp://`` pass the whole transport conformance suite."""

from __future__ import annotations

import pytest

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, check_transport

from .conftest import Certs

#: name -> (URL, uses TLS).
TRANSPORTS: dict[str, tuple[str, bool]] = {
    "kcp": ("kcp://127.0.0.1:0", False),
    "tls+kcp": ("tls+kcp://127.0.0.1:0", True),
}

#: Checks that do not apply, and why. (None: kcp:// half-closes with a FIN inside the
#: KCP stream, in order with the data, so every check runs.)
NOT_APPLICABLE: set[tuple[str, str]] = set()
#: abort() sends a RESET: the peer's session ends with a BrokenResourceError.
ADAPTER = TransportAdapter(reports_loss=True)


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_kcp_conformance(kind: str, check: str, certs: Certs) -> None:
    """The kcp transport passes the named conformance check."""
    url, tls = TRANSPORTS[kind]
    report = await check_transport(
        url,
        listen_options=certs.listen() if tls else None,
        connect_options=certs.connect() if tls else None,
        checks=[check],
        adapter=ADAPTER,
    )
    if (kind, check) in NOT_APPLICABLE:
        assert check in report.skipped, f"{check} unexpectedly ran on {kind}"
    else:
        assert report.passed == (check,), f"{check} was skipped: {report.skipped}"
