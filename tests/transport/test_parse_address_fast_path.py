"""parse_address's urllib-free fast path gives exactly what urllib's split gives."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, strategies as st

from tether import ConfigError
from tether.transport import Address, parse_address
from tether.transport._base import _SIMPLE_URL

_SCHEMES = st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,8}", fullmatch=True)
_HOSTS = st.one_of(
    st.from_regex(r"[A-Za-z0-9._-]{0,12}", fullmatch=True),
    st.ip_addresses(v=6).map(lambda ip: f"[{str(ip).upper()}]"),
)
_PORTS = st.one_of(st.just(""), st.from_regex(r":[0-9]{0,6}", fullmatch=True))
_PATHS = st.one_of(st.just(""), st.from_regex(r"/[A-Za-z0-9._~/-]{0,12}", fullmatch=True))


def _by_urllib(url: str) -> Address:
    parts = urlsplit(url)
    return Address(
        url=url,
        scheme=parts.scheme.lower(),
        host=unquote(parts.hostname or ""),
        port=parts.port,
        path=unquote(parts.path),
        query=parse_qs(parts.query),
    )


@given(_SCHEMES, _HOSTS, _PORTS, _PATHS)
def test_simple_urls_parse_as_urllib_parses_them(
    scheme: str, host: str, port: str, path: str
) -> None:
    """Every URL the fast path takes gives urllib's scheme, host, port, path and query."""
    url = f"{scheme}://{host}{port}{path}"
    assert _SIMPLE_URL.match(url) is not None
    if port[1:] and int(port[1:]) > 65535:
        return  # out of range: left to urllib, which rejects it (pinned in test_addresses)
    got = parse_address(url)
    assert got == _by_urllib(url)
    assert got.query == {}


def test_urls_with_escapes_queries_or_brackets_take_the_urllib_path() -> None:
    """Percent-escapes, queries, scoped IPv6 and user info are not for the fast path."""
    for url in (
        "unix:///tmp/my%20app.sock",
        "tcp://127.0.0.1:1?tls=optional",
        "tcp://[fe80::1%25eth0]:8972",
        "unix://@abstract",
    ):
        assert _SIMPLE_URL.match(url) is None
        assert parse_address(url) == _by_urllib(url)


def test_a_bracketed_host_that_is_not_ipv6_is_left_to_urllib() -> None:
    """[1.2.3.4] or [::g] look simple but are not IPv6: urllib's error is reported."""
    for url in ("tcp://[1.2.3.4]:1", "tcp://[12345::]:1"):
        assert _SIMPLE_URL.match(url) is not None
        with pytest.raises(ConfigError, match="malformed"):
            parse_address(url)
