"""README.md stays true: its ten-line example runs as printed."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readme_example_runs(tmp_path: Path) -> None:
    """The server + client example in README.md prints the greeting."""
    match = re.search(
        r"## Ten lines of server and client\n\n```python\n(.*?)```", README.read_text(), re.S
    )
    assert match is not None, "README lost its example"
    port = _free_port()
    code = (
        match.group(1)
        .replace("8972", str(port))
        .replace("/tmp/greeter.sock", str(tmp_path / "g.sock"))
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'message': 'hello ada'}"
