"""Fixtures for the gRPC tests: a CA and a server certificate for 127.0.0.1/localhost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme


@dataclass(frozen=True)
class TLSFiles:
    """PEM files: the CA, and the server's key + certificate chain in one file."""

    ca: Path
    server: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("grpc-certs")
    ca = trustme.CA()
    files = TLSFiles(ca=directory / "ca.pem", server=directory / "server.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(files.server)
    )
    return files
