"""Every built-in transport, and the docs' example transport, pass the conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, abort_with_reset, check_transport
from tether.transport import ConnectOptions, ListenOptions

from .conftest import Certs, have_ipv6

#: name -> (URL template, uses TLS). ``{dir}``: a short temp dir; ``{id}``: a unique name.
TRANSPORTS: dict[str, tuple[str, bool]] = {
    "tcp": ("tcp://127.0.0.1:0", False),
    "tcp-ipv6": ("tcp://[::1]:0", False),
    "unix": ("unix://{dir}/conformance.sock", False),
    "unix-abstract": ("unix://@tether-{id}", False),
    "tls": ("tls://127.0.0.1:0", True),
    "tls+tcp-ipv6": ("tls+tcp://[::1]:0", True),
    "tls+unix": ("tls+unix://{dir}/conformance-tls.sock", True),
    "memory": ("memory://conformance-{id}", False),
    "tls+memory": ("tls+memory://conformance-{id}", True),
    "streams (docs example)": ("streams://127.0.0.1:0", False),
    "tls+streams (docs example)": ("tls+streams://127.0.0.1:0", True),
}

UNIX_LOSS = "a Unix socket whose peer dies gets EOF from the kernel, as after a close"
#: What each transport declares: over TCP a peer killed with a reset (RST) must reach us
#: as a loss; memory's abort() resets its peer; a Unix socket cannot tell.
ADAPTERS: dict[str, TransportAdapter] = {
    "tcp": TransportAdapter(reports_loss=True, kill=abort_with_reset),
    "tcp-ipv6": TransportAdapter(reports_loss=True, kill=abort_with_reset),
    "unix": TransportAdapter(no_loss_reason=UNIX_LOSS),
    "unix-abstract": TransportAdapter(no_loss_reason=UNIX_LOSS),
    "tls": TransportAdapter(reports_loss=True, kill=abort_with_reset),
    "tls+tcp-ipv6": TransportAdapter(reports_loss=True, kill=abort_with_reset),
    "tls+unix": TransportAdapter(no_loss_reason=UNIX_LOSS),
    "memory": TransportAdapter(reports_loss=True),
    "tls+memory": TransportAdapter(reports_loss=True),
    "streams (docs example)": TransportAdapter(reports_loss=True, kill=abort_with_reset),
    "tls+streams (docs example)": TransportAdapter(reports_loss=True, kill=abort_with_reset),
}

#: Checks that do not apply to a transport, and why (the suite reports them as skipped).
NOT_APPLICABLE = {
    *((kind, "half_close") for kind in ("tls", "tls+tcp-ipv6", "tls+unix")),
    *((kind, "write_after_eof") for kind in ("tls", "tls+tcp-ipv6", "tls+unix")),
    *((kind, "loss_is_not_eof") for kind in ("unix", "unix-abstract", "tls+unix")),
}


def build(
    kind: str, certs: Certs, sock_dir: Path, unique: str
) -> tuple[str, ListenOptions | None, ConnectOptions | None]:
    template, tls = TRANSPORTS[kind]
    if "ipv6" in kind and not have_ipv6():
        pytest.skip("IPv6 loopback is unavailable")
    if "streams" in kind:
        import custom_transport  # noqa: F401  (registers the example's schemes)
    url = template.format(dir=sock_dir, id=unique)
    if not tls:
        return url, None, None
    return url, certs.listen(), certs.connect()


@pytest.mark.parametrize("check", TRANSPORT_CHECKS)
@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_conformance(
    kind: str, check: str, certs: Certs, sock_dir: Path, unique: str
) -> None:
    """The transport passes the named conformance check (or it is known not to apply)."""
    url, listen_options, connect_options = build(kind, certs, sock_dir, unique)
    report = await check_transport(
        url,
        listen_options=listen_options,
        connect_options=connect_options,
        checks=[check],
        adapter=ADAPTERS[kind],
    )
    if (kind, check) in NOT_APPLICABLE:
        assert check in report.skipped, f"{check} unexpectedly ran on {kind}"
    else:
        assert report.passed == (check,), f"{check} was skipped: {report.skipped}"


@pytest.mark.parametrize(
    ("kind", "skipped"),
    [
        ("memory", {"loss_is_not_eof"}),
        ("tls", {"half_close", "write_after_eof", "loss_is_not_eof"}),
        ("tls+memory", {"loss_is_not_eof"}),
    ],
)
async def test_full_suite_report(
    kind: str, skipped: set[str], certs: Certs, sock_dir: Path, unique: str
) -> None:
    """check_transport() with no ``checks`` (and no adapter) runs every check and reports
    skips with reasons."""
    url, listen_options, connect_options = build(kind, certs, sock_dir, unique)
    report = await check_transport(
        url, listen_options=listen_options, connect_options=connect_options, large_size=1 << 20
    )
    assert report.url == url
    assert set(report.skipped) == skipped
    assert all(report.skipped.values()), "every skip needs a reason"
    assert set(report.passed) | skipped == set(TRANSPORT_CHECKS)


async def test_unknown_check_name() -> None:
    """Asking for a check that does not exist is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match="connect_and_listen"):
        await check_transport("memory://x", checks=["no_such_check"])
