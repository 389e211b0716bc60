"""Fixtures for the ``tether`` command tests: a runner, certificates, and demo servers.

Servers listen on loopback and on unix sockets under pytest's tmp paths only. Each
server fixture is shared by the whole ``tests/cli`` package to keep the runtime down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from .helpers import Certs, Run, ServeProcess, run_tether, start_serve


@pytest.fixture(scope="package")
def tether() -> Run:
    """``tether(*args)`` runs the command and returns the CompletedProcess."""
    return run_tether


@pytest.fixture(scope="package")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a server certificate (key in the same file) and a client certificate."""
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    files = Certs(
        ca=directory / "ca.pem",
        server=directory / "server.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(files.server)
    )
    client = ca.issue_cert("client.tether.test")
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    return files


@pytest.fixture(scope="package")
def demo_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ServeProcess]:
    """One ``tether serve demo`` on tcp, a unix socket, shm and tls (no client certificates)."""
    sock = tmp_path_factory.mktemp("sock") / "demo.sock"
    server = start_serve(
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        f"unix://{sock}",
        "--listen",
        f"shm://{sock.with_name('demo-shm.sock')}",
        "--listen",
        "tls://127.0.0.1:0",
        "--cert",
        certs.server,
    )
    yield server
    status, err = server.stop()
    assert status == 0, err


@pytest.fixture(scope="package")
def mtls_server(certs: Certs) -> Iterator[ServeProcess]:
    """A ``tether serve demo`` on tls that requires client certificates from the test CA."""
    server = start_serve(
        "--listen", "tls://127.0.0.1:0", "--cert", certs.server, "--cacert", certs.ca
    )
    yield server
    status, err = server.stop()
    assert status == 0, err
