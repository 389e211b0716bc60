"""URL parsing, the Unix URL syntax, and the transport registry."""

from __future__ import annotations

import pytest

from tether import ConfigError, ConnectError
from tether.transport import (
    ConnectOptions,
    ListenOptions,
    MemoryTransport,
    get_transport,
    parse_address,
    register_transport,
    registered_schemes,
)
from tether.transport._tcp import format_host_port
from tether.transport._unix import format_unix_url, unix_socket_path

# -- parse_address ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        ("tcp://127.0.0.1:8972", "tcp", "127.0.0.1", 8972, ""),
        ("tcp://[::1]:8972", "tcp", "::1", 8972, ""),
        ("TCP://Example.COM:1", "tcp", "example.com", 1, ""),
        ("tls://localhost:0", "tls", "localhost", 0, ""),
        ("tcp://host", "tcp", "host", None, ""),
        ("unix:///run/app.sock", "unix", "", None, "/run/app.sock"),
        ("unix:///tmp/my%20app.sock", "unix", "", None, "/tmp/my app.sock"),
        ("memory://name", "memory", "name", None, ""),
        ("tls+memory://svc/a", "tls+memory", "svc", None, "/a"),
    ],
)
def test_parse_address(url: str, scheme: str, host: str, port: int | None, path: str) -> None:
    """parse_address splits scheme (lowercased), host (brackets removed), port and path."""
    address = parse_address(url)
    assert (address.scheme, address.host, address.port, address.path) == (
        scheme,
        host,
        port,
        path,
    )
    assert address.url == url


def test_parse_address_query_parameters() -> None:
    """Query parameters are parsed; param() returns the last value or the default."""
    address = parse_address("tcp://h:1?x=1&x=2&y=")
    assert address.param("x") == "2"
    assert address.param("missing", "d") == "d"


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8972", "localhost", "", "tcp://h:99999", "tcp://h:port", "tcp://[::1"]
)
def test_parse_address_rejects_malformed_urls(url: str) -> None:
    """No scheme, a non-numeric or out-of-range port, or broken brackets is a ConfigError."""
    with pytest.raises(ConfigError):
        parse_address(url)


def test_format_host_port_brackets_ipv6() -> None:
    """Listener addresses put IPv6 hosts in brackets so they parse back."""
    assert format_host_port("tcp", "::1", 5) == "tcp://[::1]:5"
    assert parse_address(format_host_port("tcp", "::1", 5)).host == "::1"
    assert format_host_port("tls", "127.0.0.1", 5) == "tls://127.0.0.1:5"


# -- unix:// -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("unix:///run/app.sock", "/run/app.sock"),
        ("unix:///tmp/my%20app.sock", "/tmp/my app.sock"),
        ("unix:///tmp/a.sock?backlog=1", "/tmp/a.sock"),
        ("unix://@tether", "\0tether"),
        ("unix://@MixedCase", "\0MixedCase"),
        ("tls+unix://@a%2Fb", "\0a/b"),
    ],
)
def test_unix_socket_path(url: str, path: str) -> None:
    """unix:///abs/path is a file; unix://@name is an abstract name, case and all."""
    assert unix_socket_path(parse_address(url)) == path
    assert unix_socket_path(parse_address(format_unix_url("unix", path))) == path


@pytest.mark.parametrize("url", ["unix://relative/path", "unix://", "unix://@", "unix:relative"])
def test_unix_urls_need_an_absolute_path_or_a_name(url: str) -> None:
    """Relative paths and empty abstract names are ConfigErrors that show the syntax."""
    with pytest.raises(ConfigError):
        unix_socket_path(parse_address(url))


# -- the registry --------------------------------------------------------------------------


def test_builtin_schemes_are_registered() -> None:
    """Importing tether.transport registers every built-in scheme."""
    assert {"tcp", "unix", "tls", "tls+tcp", "tls+unix", "memory", "tls+memory"} <= set(
        registered_schemes()
    )
    assert get_transport("tls") is get_transport("tls+tcp")
    assert get_transport("TCP") is get_transport("tcp")


def test_registering_a_taken_scheme_is_a_config_error() -> None:
    """A second registration under the same scheme needs replace=True."""
    with pytest.raises(ConfigError, match="already registered"):
        register_transport("tcp", MemoryTransport())
    with pytest.raises(ConfigError, match="already registered"):
        register_transport("MEMORY", MemoryTransport())


def test_replace_swaps_a_transport() -> None:
    """replace=True installs a new transport for a scheme."""
    first, second = MemoryTransport(), MemoryTransport()
    register_transport("replace-me", first)
    register_transport("replace-me", second, replace=True)
    assert get_transport("replace-me") is second


def test_unknown_scheme_is_a_config_error() -> None:
    """Asking for an unregistered scheme is a ConfigError that lists the known schemes."""
    with pytest.raises(ConfigError, match=r"unknown transport scheme 'carrier-pigeon'.*tcp"):
        get_transport("carrier-pigeon")


@pytest.mark.parametrize("url", ["tcp://127.0.0.1", "tcp://:80", "tls://:443"])
async def test_tcp_connect_needs_host_and_port(url: str) -> None:
    """Dialing TCP without a host or port is a ConfigError, not an OS error."""
    with pytest.raises(ConfigError, match="host:port"):
        await get_transport(parse_address(url).scheme).connect(parse_address(url), ConnectOptions())


async def test_tcp_listen_needs_a_port() -> None:
    """Listening on TCP needs an explicit port (0 picks a free one)."""
    with pytest.raises(ConfigError, match="port"):
        await get_transport("tcp").listen(
            parse_address("tcp://127.0.0.1"), ListenOptions(), lambda conn: None
        )


async def test_unresolvable_host_is_a_connect_error() -> None:
    """A host name that does not resolve fails with ConnectError."""
    with pytest.raises(ConnectError):
        await get_transport("tcp").connect(
            parse_address("tcp://no-such-host.invalid:1"), ConnectOptions(connect_timeout=5)
        )


def test_heavy_transports_load_on_first_use() -> None:
    """quic/kcp/shm/http-connect are registered lazily: importing tether loads none of
    their stacks, and the first lookup of a scheme imports and returns its transport."""
    import subprocess
    import sys

    code = (
        "import sys, tether, tether.transport as t\n"
        "assert 'quic' in t.registered_schemes()\n"
        "assert not any(m.startswith(('aioquic', 'kcp', 'hpack')) for m in sys.modules)\n"
        "assert type(t.get_transport('quic')).__name__ == 'QuicTransport'\n"
        "assert 'aioquic' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_a_lazy_scheme_whose_module_does_not_register_it_is_a_config_error() -> None:
    """register_lazy_transport names a module; if importing it registers nothing, the
    lookup fails with a clear ConfigError."""
    from tether.transport import _base, get_transport, register_lazy_transport

    register_lazy_transport("nothing-here", "json")
    try:
        with pytest.raises(ConfigError, match="did not register"):
            get_transport("nothing-here")
    finally:
        _base._LAZY.pop("nothing-here", None)
