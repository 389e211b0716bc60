"""Client keepalive: one task per connection that PINGs on a schedule."""

from __future__ import annotations

import asyncio
import logging

from ._config import KeepaliveConfig
from ._dispatch import ConnectionState, Dispatcher
from ._exceptions import RPCError

logger = logging.getLogger("tether.client")


async def keep_alive(dispatcher: Dispatcher, config: KeepaliveConfig) -> None:
    """PING every ``config.interval`` seconds until the connection is gone.

    Skips the PING while no call is in flight unless ``config.without_calls``. A PING not
    acknowledged within ``config.timeout`` aborts the connection (its calls fail with
    UNAVAILABLE). Returns when the connection is closed; cancel it to stop early.
    """
    try:
        await dispatcher.wait_connected()
    except RPCError:
        return
    while True:
        await asyncio.sleep(config.interval)
        if dispatcher.state is ConnectionState.DISCONNECTED:
            return
        if not dispatcher.streams and not config.without_calls:
            continue
        try:
            await asyncio.wait_for(dispatcher.ping(), config.timeout)
        except TimeoutError:
            logger.warning(
                "keepalive: no PING acknowledgement from %s in %gs; closing the connection",
                dispatcher.peer,
                config.timeout,
            )
            dispatcher.abort("keepalive timeout: the server did not answer a PING")
            return
        except RPCError:
            return
