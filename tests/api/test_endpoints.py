"""End to end over real sockets: tcp, unix, tls and tls+unix, with TLS and mTLS."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

import tether
from tether.demo._services import PROTO_SERVICE, demo_services
from tether.demo.echo_pb2 import EchoReply, EchoRequest


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a
    client certificate from another CA."""
    base = tmp_path_factory.mktemp("pki")
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@tether")
    stranger = other_ca.issue_cert("stranger@tether")
    files = {
        "ca": base / "ca.pem",
        "server": base / "server.pem",
        "client": base / "client.pem",
        "stranger": base / "stranger.pem",
    }
    ca.cert_pem.write_to_path(files["ca"])
    server.private_key_and_cert_chain_pem.write_to_path(files["server"])
    client.private_key_and_cert_chain_pem.write_to_path(files["client"])
    stranger.private_key_and_cert_chain_pem.write_to_path(files["stranger"])
    return files


def _urls(tmp_path: Path) -> list[str]:
    return [
        "tcp://127.0.0.1:0",
        f"unix://{tmp_path}/plain.sock",
        "tls://127.0.0.1:0",
        f"tls+unix://{tmp_path}/tls.sock",
    ]


async def _exercise(client: tether.Client) -> None:
    stub = client.stub(next(s for s in demo_services() if s.name == PROTO_SERVICE))
    reply = await stub.Unary(EchoRequest(data=b"ab", repeat=2), metadata={"k": "v"})
    assert reply.data == b"abab"
    assert reply.metadata["k"] == "v"
    assert [r.data async for r in stub.ServerStream(EchoRequest(data=b"s", repeat=3))] == [b"s"] * 3
    call = stub.ClientStream()
    for part in (b"x", b"y"):
        await call.send(EchoRequest(data=part))
    assert (await call.response()).data == b"xy"
    async with stub.BidiStream() as bidi:
        await bidi.send(EchoRequest(data=b"b"))
        reply = await bidi.recv()
        assert isinstance(reply, EchoReply)
        assert reply.data == b"b"


async def test_every_cardinality_on_every_socket_transport(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    """One server listens on tcp, unix, tls and tls+unix at once; each serves every call kind."""
    server = tether.Server(demo_services())
    await server.start(*_urls(tmp_path), tls=tether.TLSConfig(cert=pki["server"]))
    try:
        for url in server.addresses:
            tls = (
                tether.TLSConfig(ca=pki["ca"], server_name="localhost")
                if url.startswith("tls")
                else None
            )
            async with tether.Client(url, tls=tls) as client:
                await _exercise(client)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("scheme", ["tls", "tls+unix"])
async def test_mtls_requires_a_valid_client_certificate(
    tmp_path: Path, pki: dict[str, Path], scheme: str
) -> None:
    """With a CA set on the server, clients without a certificate from it are refused."""
    url = "tls://127.0.0.1:0" if scheme == "tls" else f"tls+unix://{tmp_path}/mtls.sock"
    server = tether.Server(demo_services())
    await server.start(url, tls=tether.TLSConfig(cert=pki["server"], ca=pki["ca"]))
    address = server.addresses[0]
    request = EchoRequest(data=b"m")
    try:
        for cert in (None, pki["stranger"]):
            tls = tether.TLSConfig(ca=pki["ca"], cert=cert, server_name="localhost")
            async with tether.Client(address, tls=tls, timeout=5) as client:
                with pytest.raises(tether.StatusError) as info:
                    await client.unary(f"{PROTO_SERVICE}/Unary", request, response_type=EchoReply)
                assert info.value.status is tether.Status.UNAVAILABLE
        tls = tether.TLSConfig(ca=pki["ca"], cert=pki["client"], server_name="localhost")
        async with tether.Client(address, tls=tls) as client:
            reply = await client.unary(f"{PROTO_SERVICE}/Unary", request, response_type=EchoReply)
            assert reply.data == b"m"
    finally:
        server.close()
        await server.wait_closed()


async def test_untrusted_server_is_refused(tmp_path: Path, pki: dict[str, Path]) -> None:
    """A client that does not trust the server's CA fails with UNAVAILABLE."""
    server = tether.Server(demo_services())
    await server.start("tls://127.0.0.1:0", tls=tether.TLSConfig(cert=pki["server"]))
    try:
        other = trustme.CA()
        other.cert_pem.write_to_path(tmp_path / "other.pem")
        tls = tether.TLSConfig(ca=tmp_path / "other.pem", server_name="localhost")
        async with tether.Client(server.addresses[0], tls=tls) as client:
            with pytest.raises(tether.StatusError) as info:
                await client.unary(f"{PROTO_SERVICE}/Unary", EchoRequest(), response_type=EchoReply)
        assert info.value.status is tether.Status.UNAVAILABLE
    finally:
        server.close()
        await server.wait_closed()
