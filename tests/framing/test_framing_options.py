"""Per-instance framing options: a Framing's options_type, new_codec and the name →
options mapping a Server takes (validated up front, with ConfigError)."""

from __future__ import annotations

import pytest

from tether import ConfigError
from tether.framing import (
    CodecConfig,
    Framing,
    NativeCodec,
    Role,
    check_protocol_options,
    get_framing,
)
from tether.framing.grpc import GrpcCodec, GrpcOptions


def test_grpc_framing_declares_its_options() -> None:
    """The registered grpc framing takes GrpcOptions; the native one takes none."""
    assert get_framing("grpc").options_type is GrpcOptions
    assert get_framing("tether").options_type is None


def test_new_codec_passes_the_options_to_the_codec() -> None:
    """new_codec with options builds the codec with exactly those options, without them
    with the framing's defaults."""
    options = GrpcOptions(ping_flood_limit=7, user_agent="probe/1", settings_timeout=None)
    framing = get_framing("grpc")
    codec = framing.new_codec(Role.SERVER, CodecConfig(), options)
    assert isinstance(codec, GrpcCodec)
    assert codec.options is options
    assert codec.handshake_timeout is None
    default = framing.new_codec(Role.SERVER, CodecConfig())
    assert isinstance(default, GrpcCodec)
    assert default.options == GrpcOptions()
    assert default.handshake_timeout == 10.0


def test_new_codec_rejects_options_of_another_type() -> None:
    """Options of the wrong class, or any options for a framing that takes none, are a
    ConfigError naming the protocol."""
    with pytest.raises(ConfigError, match="'grpc' takes GrpcOptions options, not dict"):
        get_framing("grpc").new_codec(Role.CLIENT, CodecConfig(), {"ping_flood_limit": 1})
    with pytest.raises(ConfigError, match="'tether' takes no options"):
        get_framing("tether").new_codec(Role.CLIENT, CodecConfig(), GrpcOptions())


def test_options_type_and_factory_go_together() -> None:
    """A Framing declaring options_type without create_with_options (or the reverse) is
    refused at construction."""

    def create(role: Role, config: CodecConfig) -> NativeCodec:
        return NativeCodec(role, config)

    with pytest.raises(ConfigError, match="go together"):
        Framing(name="x", create=create, options_type=GrpcOptions)
    with pytest.raises(ConfigError, match="go together"):
        Framing(name="x", create=create, create_with_options=lambda r, c, o: create(r, c))


def test_protocol_options_mapping_is_checked() -> None:
    """check_protocol_options copies a valid mapping and refuses unknown names and
    mismatched options."""
    options = GrpcOptions(settings_flood_limit=3)
    source = {"grpc": options}
    checked = check_protocol_options(source)
    assert checked == {"grpc": options}
    assert checked is not source
    assert check_protocol_options(None) == {}
    with pytest.raises(ConfigError, match="unknown protocol 'grcp'"):
        check_protocol_options({"grcp": options})
    with pytest.raises(ConfigError, match="takes no options"):
        check_protocol_options({"tether": options})


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("compression", "br", "unsupported grpc-encoding 'br'"),
        ("settings_timeout", 0.0, "settings_timeout must be positive"),
        ("ping_flood_limit", 0, "ping_flood_limit must be at least 1"),
    ],
)
def test_bad_grpc_options_are_a_config_error(field: str, value: object, match: str) -> None:
    """GrpcOptions validates itself when built, before any connection exists."""
    with pytest.raises(ConfigError, match=match):
        GrpcOptions(**{field: value})  # type: ignore[arg-type]
