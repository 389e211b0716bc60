"""What a gRPC client connection announces: :authority, :scheme and ALPN."""

from __future__ import annotations

import pytest

import tether
from tether._client import default_authority
from tether.framing import CodecConfig, Framing, Role
from tether.framing._base import _FRAMINGS
from tether.framing.grpc import GrpcCodec, GrpcOptions, detect_grpc
from tether.transport import parse_address


@pytest.mark.parametrize(
    ("url", "authority"),
    [
        ("tcp://127.0.0.1:50051", "127.0.0.1:50051"),
        ("tls://localhost:443", "localhost:443"),
        ("tcp://[::1]:8080", "[::1]:8080"),
        ("unix:///tmp/x.sock", "localhost"),
        ("memory://name", "localhost"),
    ],
)
def test_default_authority_is_host_and_port(url: str, authority: str) -> None:
    """:authority defaults to host:port, or localhost where an address has none."""
    assert default_authority(parse_address(url)) == authority


@pytest.mark.parametrize(
    ("url", "scheme"), [("tcp://127.0.0.1:1", "http"), ("tls://127.0.0.1:1", "https")]
)
def test_grpc_codec_gets_authority_and_scheme(url: str, scheme: str) -> None:
    """The client's gRPC codec sends the URL's host:port (or the given authority) and
    https over TLS."""
    codec = tether.Client(url, protocol="grpc")._create_codec()
    assert isinstance(codec, GrpcCodec)
    assert (codec.options.authority, codec.options.scheme) == (url.split("//")[1], scheme)
    named = tether.Client(url, protocol="grpc", authority="kitexpeer.server")._create_codec()
    assert isinstance(named, GrpcCodec)
    assert named.options.authority == "kitexpeer.server"


def test_grpc_over_tls_offers_h2() -> None:
    """ALPN h2 is offered for gRPC over TLS unless the caller chose protocols."""
    client = tether.Client("tls://127.0.0.1:1", protocol="grpc")
    assert client._options.tls is not None
    assert client._options.tls.alpn == ("h2",)
    mine = tether.TLSConfig(alpn=("custom",))
    assert tether.Client("tls://127.0.0.1:1", protocol="grpc", tls=mine)._options.tls is mine
    assert tether.Client("tls://127.0.0.1:1")._options.tls is None


def test_process_wide_registration_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grpc framing registered again without options_type (the process-wide way) still
    makes every client's codecs, with the client's authority and scheme filled in."""

    def create(role: Role, config: CodecConfig) -> GrpcCodec:
        return GrpcCodec(role, config, GrpcOptions(user_agent="everyone/1"))

    framing = Framing(name="grpc", create=create, detect=detect_grpc, priority=5)
    monkeypatch.setitem(_FRAMINGS, "grpc", framing)
    codec = tether.Client("tls://127.0.0.1:9", protocol="grpc")._create_codec()
    assert isinstance(codec, GrpcCodec)
    assert codec.options.user_agent == "everyone/1"
    assert (codec.options.authority, codec.options.scheme) == ("127.0.0.1:9", "https")
