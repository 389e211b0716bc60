"""The docs' worked example (docs/examples/custom_transport.py) stays correct and in sync."""

from __future__ import annotations

import re
from pathlib import Path

from tether.testing import TRANSPORT_CHECKS, TransportAdapter, abort_with_reset, check_transport
from tether.transport import get_transport, registered_schemes

from .conftest import Certs

#: streams:// runs over TCP: a peer killed with a reset must reach us as a loss.
ADAPTER = TransportAdapter(reports_loss=True, kill=abort_with_reset)

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "custom_transport.py"
GUIDE = DOCS / "transports.md"
MARKER = "# docs/examples/custom_transport.py\n"


async def test_example_passes_the_whole_suite() -> None:
    """streams:// passes every conformance check, as the guide claims (nothing skipped)."""
    import custom_transport

    assert isinstance(get_transport("streams"), custom_transport.StreamsTransport)
    report = await check_transport("streams://127.0.0.1:0", adapter=ADAPTER)
    assert report.passed == TRANSPORT_CHECKS
    assert not report.skipped


async def test_example_gets_tls_from_the_wrapper(certs: Certs) -> None:
    """tls+streams:// (TLSTransport over the example) passes the whole suite too."""
    import custom_transport  # noqa: F401

    report = await check_transport(
        "tls+streams://127.0.0.1:0",
        listen_options=certs.listen(),
        connect_options=certs.connect(),
        adapter=ADAPTER,
    )
    assert report.passed == TRANSPORT_CHECKS


def test_example_registers_through_the_public_api_only() -> None:
    """The example plugs in with register_transport; it imports no private tether module."""
    import custom_transport  # noqa: F401

    assert {"streams", "tls+streams"} <= set(registered_schemes())
    source = EXAMPLE.read_text()
    private = re.findall(r"^from tether\S*\._\w+ import|^import tether\S*\._", source, re.M)
    assert private == [], f"the example imports private modules: {private}"


def test_guide_excerpts_match_the_example() -> None:
    """Every code block in transports.md marked as an excerpt is verbatim in the example."""
    guide = GUIDE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    excerpts = [b[len(MARKER) :] for b in blocks if b.startswith(MARKER)]
    assert len(excerpts) >= 5, "the guide lost its walkthrough excerpts"
    source = EXAMPLE.read_text()
    for excerpt in excerpts:
        assert excerpt.rstrip("\n") in source, f"stale excerpt in transports.md:\n{excerpt}"


def test_guide_lists_every_builtin_scheme_and_check() -> None:
    """The scheme table names every built-in scheme; the check table every check."""
    guide = GUIDE.read_text()
    for scheme in ("tcp", "unix", "tls", "tls+tcp", "tls+unix", "memory", "tls+memory"):
        assert f"`{scheme}`" in guide, f"{scheme} missing from 'Choosing a transport'"
    for check in TRANSPORT_CHECKS:
        assert f"| `{check}` |" in guide, f"check {check} missing from the guide"
