"""Loading the Kitex wire captures in ``../shared/vectors/kitex`` (next to the repo)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

VECTOR_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "kitex"


@dataclass(frozen=True)
class Capture:
    """One captured case: the bytes each way and what the real peers observed."""

    name: str
    request: bytes
    response: bytes
    request_stable: bool
    response_stable: bool
    raw: dict[str, Any]

    @property
    def server_observed(self) -> dict[str, Any] | None:
        observed = self.raw.get("server_observed")
        return observed[0] if observed else None


def _load(path: Path) -> Capture:
    raw = json.loads(path.read_text())
    stability = raw.get("stability", {})
    return Capture(
        name=path.stem,
        request=bytes.fromhex(raw["request_hex"]),
        response=bytes.fromhex(raw["response_hex"]),
        request_stable=stability.get("request", "").startswith("identical"),
        response_stable=stability.get("response", "").startswith("identical"),
        raw=raw,
    )


def capture_params() -> list[Any]:
    """Every non-gRPC capture as a pytest param (one skipped param when the folder is absent)."""
    if not VECTOR_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no vectors at {VECTOR_DIR}"))]
    paths = sorted(p for p in VECTOR_DIR.glob("*.json") if not p.name.startswith(("grpc_", "_")))
    return [pytest.param(_load(p), id=p.stem) for p in paths]
