"""A client subprocess: ``python -m tether.bench._drive KEY LOOP ADDRESS CERT_DIR``.

Each system's client runs in its own process, so one system's threads or pollers (grpcio
has some) never share a CPU budget with another's measurement. The harness sends one JSON
command per stdin line and reads one JSON reply per stdout line:

``{"op": "check"}``, ``{"op": "sequential", "calls": n, "size": s}``,
``{"op": "concurrent", "calls": n, "size": s, "in_flight": k}``. Replies are
``{"ok": true, ...figures}`` or ``{"ok": false, "error": "..."}``. EOF on stdin: close and exit.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from ._loops import loop_factory
from ._scenarios import check_echo, concurrent, sequential
from ._systems import Certs, EchoClient, connect_ceiling, connect_peer, connect_tether


async def _connect(key: str, address: str, certs: Certs, in_flight: int) -> EchoClient:
    if key == "ceiling":
        return await connect_ceiling(address)
    family, _, rest = key.partition("/")
    if family == "peer":
        return await connect_peer(rest, address)
    transport, _, protocol = rest.partition("/")
    return await connect_tether(transport, protocol, address, certs, in_flight)


async def _execute(client: EchoClient, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "check":
        await check_echo(client.call)
        return {"connections": client.connections_label}
    if op == "sequential":
        return await sequential(
            client.call, command["calls"], command["size"], command.get("max_seconds")
        )
    if op == "concurrent":
        calls = await client.concurrent_calls(command["in_flight"])
        return await concurrent(
            calls, command["calls"], command["size"], command.get("max_seconds")
        )
    raise ValueError(f"unknown command {op!r}")


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def drive(key: str, address: str, certs: Certs) -> None:
    loop = asyncio.get_running_loop()
    try:
        client = await _connect(key, address, certs, 100)
    except Exception as exc:
        _reply({"ok": False, "error": f"connect: {type(exc).__name__}: {exc}"})
        return
    _reply({"ok": True})
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            try:
                result = await _execute(client, json.loads(line))
            except Exception as exc:
                _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            else:
                _reply({"ok": True, **result})
    finally:
        await client.close()


def main(argv: list[str]) -> None:
    key, loop, address, cert_dir = argv
    certs = Certs.in_directory(cert_dir)
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(drive(key, address, certs))


if __name__ == "__main__":
    main(sys.argv[1:])
