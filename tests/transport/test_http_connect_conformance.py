"""http-connect (direct and through a real CONNECT proxy) and tls+http-connect pass the
transport conformance suite."""

from __future__ import annotations

import pytest

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, abort_with_reset, check_transport
from tether.transport import ConnectOptions, ListenOptions

from .conftest import Certs, have_ipv6
from .connect_proxy import running_proxy

KINDS = (
    "http-connect",
    "http-connect ipv6",
    "http-connect via proxy",
    "tls+http-connect",
    "tls+http-connect via proxy",
)


#: Direct, a tunnel is a TCP connection: a peer killed with a reset must reach us as a
#: loss. Through a proxy it cannot: the proxy relays its upstream's reset as a close.
DIRECT = TransportAdapter(reports_loss=True, kill=abort_with_reset)
PROXIED = TransportAdapter(
    no_loss_reason="an HTTP proxy relays one side's reset to the other as a close (FIN)"
)


def options(kind: str, certs: Certs) -> tuple[ListenOptions | None, ConnectOptions | None]:
    if kind.startswith("tls+"):
        return certs.listen(), certs.connect()
    return None, None


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
@pytest.mark.parametrize("kind", KINDS)
async def test_conformance(kind: str, check: str, certs: Certs) -> None:
    """The http-connect transport passes the named conformance check."""
    scheme = kind.split()[0]
    host = "127.0.0.1"
    if "ipv6" in kind:
        if not have_ipv6():
            pytest.skip("IPv6 loopback is unavailable")
        host = "[::1]"
    listen_options, connect_options = options(kind, certs)
    async with running_proxy() as proxy:
        url = f"{scheme}://{host}:0"
        if "proxy" in kind:
            url += f"?proxy={proxy.url}"
        report = await check_transport(
            url,
            listen_options=listen_options,
            connect_options=connect_options,
            checks=[check],
            large_size=4 << 20,
            adapter=PROXIED if "proxy" in kind else DIRECT,
        )
        if "proxy" in kind and check not in ("connect_refused", "loss_is_not_eof"):
            assert proxy.tunnels > 0, "the calls did not go through the proxy"
    if "proxy" in kind and check == "loss_is_not_eof":
        assert check in report.skipped, f"{check} unexpectedly ran on {kind}"
    else:
        assert report.passed == (check,), f"{check} was skipped: {report.skipped}"
