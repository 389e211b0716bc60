"""The server: serve services on many addresses at once, with graceful drain."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from ._config import KeepaliveConfig, ListenOptions, TLSConfig
from ._context import ServerContext
from ._dispatch import ConnectionState, DetectingHandler, Dispatcher, RPCStream
from ._dispatch._keepalive import LivenessConfig
from ._exceptions import ConfigError
from ._server_call import ActiveCall, MethodPlan
from ._service import Service
from ._status import Status
from .framing import CallStarted, CodecConfig, Framing, Role, check_protocol_options, get_framing
from .transport import Connection, ConnectionHandler, Listener, get_transport, parse_address

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CANCELLED: Final = Status.CANCELLED
_CONN_DISCONNECTED: Final = ConnectionState.DISCONNECTED
_DEADLINE_EXCEEDED: Final = Status.DEADLINE_EXCEEDED
_INTERNAL: Final = Status.INTERNAL
_INVALID_ARGUMENT: Final = Status.INVALID_ARGUMENT
_OK: Final = Status.OK
_UNAVAILABLE: Final = Status.UNAVAILABLE
_UNIMPLEMENTED: Final = Status.UNIMPLEMENTED
_UNKNOWN: Final = Status.UNKNOWN

logger = logging.getLogger("tether.server")

OnConnectionState = Callable[[Dispatcher, ConnectionState], None]

#: Framings whose replies follow Kitex's conventions: a biz error is a REPLY with an empty
#: result plus ``biz-*`` metadata, a handler error reads ``biz error: <error>``, an unknown
#: method ``unknown service <isn>, method <name>``.
KITEX_FRAMINGS = frozenset(
    {"buffered", "framed", "ttheader", "ttheader_framed", "kitex_protobuf", "theader"}
)
#: ALPN a TLS listener accepts when its TLSConfig names none: ``h2`` for gRPC clients
#: (grpcio insists on it), then tether's own. The protocol is still picked by sniffing.
DEFAULT_ALPN = ("h2", "tether")


class Server:
    """Serves :class:`Service` objects over any registered transport and protocol.

    Example::

        server = Server([greeter])
        await server.start("tcp://127.0.0.1:8972", "unix:///tmp/x.sock")
        ...
        server.close()
        await server.wait_closed()

    Every accepted connection is sniffed once (Kitex detection) and served in the
    protocol its first bytes show: tether's native protocol, and every other framing
    registered with a detector. ``close()`` starts a graceful drain: listeners stop, every
    connection gets GOAWAY (new calls are refused with UNAVAILABLE), in-flight calls get
    ``grace`` seconds to finish, then they are cancelled and the connections close.

    Args:
        services: services to serve (more can be added with :meth:`add_service`).
        grace: seconds in-flight calls get to finish during :meth:`close`.
        codec_config: limits and tuning for every connection's codec.
        protocols: names of the framings to accept (default: every registered one).
        on_connection_state: called with (dispatcher, state) on CONNECTED, DRAINING and
            DISCONNECTED of every connection.
        keepalive: PING a client after ``interval`` seconds without hearing from it and
            drop the connection (its calls are cancelled) when nothing comes back within
            ``timeout`` (default: off; :class:`~tether.KeepaliveConfig`).
        idle_timeout: close a connection with no call in flight for this many seconds
            (GOAWAY, then a graceful close); one whose first bytes have not shown its
            protocol by then (it sent nothing, or stalls inside them) is aborted.
        detect_timeout: seconds a new connection gets to show its protocol (to send the
            first bytes detection needs) before it is aborted, with the reason logged
            (default 120, as grpc-go's ConnectionTimeout; ``None``: no limit). A
            shorter ``idle_timeout`` applies to such connections too.
        protocol_options: per-framing options for this server's connections, by framing
            name, each an instance of that framing's ``options_type`` (e.g.
            ``{"grpc": GrpcOptions(ping_flood_limit=100)}``); other servers and clients
            in the process keep their own. ConfigError for an unknown name or a wrong
            options type.
    """

    def __init__(
        self,
        services: Iterable[Service] = (),
        *,
        grace: float = 5.0,
        codec_config: CodecConfig | None = None,
        protocols: Sequence[str] | None = None,
        on_connection_state: OnConnectionState | None = None,
        keepalive: KeepaliveConfig | None = None,
        idle_timeout: float | None = None,
        detect_timeout: float | None = 120.0,
        protocol_options: Mapping[str, object] | None = None,
    ) -> None:
        self._services: dict[str, Service] = {}
        self._methods: dict[tuple[str, str], MethodPlan] = {}
        # For calls that name no service (Buffered/Framed Thrift) or name it the way Kitex
        # does (``isn`` = the IDL service name, without namespace, any case).
        self._by_method: dict[str, list[tuple[str, MethodPlan]]] = {}
        self._aliases: dict[str, list[str]] = {}
        self._kitex: set[Dispatcher] = set()
        #: The last exact (service, method) hit and its plan (plans are never replaced).
        self._last_method: tuple[str, str, MethodPlan | None] = ("", "", None)
        for service in services:
            self.add_service(service)
        if grace < 0:
            raise ConfigError("grace must not be negative")
        self._grace = grace
        self._codec_config = codec_config or CodecConfig()
        self._protocols = list(protocols) if protocols is not None else None
        self._protocol_options = check_protocol_options(protocol_options)
        self._on_connection_state = on_connection_state
        self._keepalive = LivenessConfig.of(keepalive, idle_timeout)
        if detect_timeout is not None and not detect_timeout > 0:
            raise ConfigError("detect_timeout must be positive (or None for no limit)")
        idle = self._keepalive.idle_timeout
        self._detect_timeout = (
            idle
            if detect_timeout is None or (idle is not None and idle < detect_timeout)
            else detect_timeout
        )
        self._listeners: list[Listener] = []
        self._dispatchers: set[Dispatcher] = set()
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed: asyncio.Future[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    def add_service(self, service: Service) -> None:
        """Serve ``service`` (also after :meth:`start`).

        Raises:
            ConfigError: a service with the same name is already served.
        """
        if service.name in self._services:
            raise ConfigError(f"service {service.name!r} is already registered")
        for name, spec in service.methods.items():
            if spec.handler is None:
                raise ConfigError(f"{service.name}/{name} has no handler")
        self._services[service.name] = service
        for name, spec in service.methods.items():
            plan = MethodPlan(spec)
            self._methods[(service.name, name)] = plan
            self._by_method.setdefault(name, []).append((service.name, plan))
        lowered = service.name.lower()
        for alias in {lowered, lowered.rpartition(".")[2]}:
            self._aliases.setdefault(alias, []).append(service.name)

    @property
    def services(self) -> list[Service]:
        """The services being served."""
        return list(self._services.values())

    @property
    def addresses(self) -> list[str]:
        """The URLs the server listens on (real ports when bound to port 0)."""
        return [listener.address for listener in self._listeners]

    @property
    def connection_count(self) -> int:
        """Open connections."""
        return len(self._connections)

    def is_serving(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return bool(self._listeners) and not self._closing

    async def start(
        self,
        *urls: str,
        tls: TLSConfig | None = None,
        backlog: int = 1024,
        reuse_port: bool = False,
    ) -> None:
        """Listen on every URL (``tcp://``, ``unix://``, ``tls://``, ``memory://`` ...).

        ``tls`` goes to the transports that use TLS (``tls://``, ``tls+unix://``...) and is
        ignored by the others, so one call can start plain and TLS listeners.
        ``reuse_port`` sets SO_REUSEPORT on TCP listeners, so several processes can
        listen on one port (``tether serve --workers``). Without ``tls.alpn`` a TLS
        listener accepts ALPN :data:`DEFAULT_ALPN`. If any
        address fails, the ones already bound are
        closed again and the error propagates.

        Raises:
            ConfigError: a URL is malformed or its scheme unknown.
            TransportError: binding failed.
        """
        if self._closing:
            raise ConfigError("the server is closed")
        if not urls:
            raise ConfigError("start() needs at least one address")
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        candidates = self._candidates()
        if tls is not None and not tls.alpn:
            tls = dataclasses.replace(tls, alpn=DEFAULT_ALPN)
        started: list[Listener] = []
        try:
            for url in urls:
                address = parse_address(url)
                transport = get_transport(address.scheme)
                options = ListenOptions(
                    tls=tls if transport.uses_tls_for(address) else None,
                    backlog=backlog,
                    reuse_port=reuse_port,
                )
                listener = await transport.listen(
                    address, options, lambda conn: self._accept(conn, candidates)
                )
                started.append(listener)
        except BaseException:
            for listener in started:
                await listener.aclose()
            raise
        self._listeners.extend(started)
        for listener in started:
            logger.info("listening on %s", listener.address)

    async def serve_forever(self) -> None:
        """Wait until the server is closed (cancel to close it)."""
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            self.close()
            await asyncio.shield(self.wait_closed())
            raise

    def close(self) -> None:
        """Start a graceful shutdown (returns at once; see :meth:`wait_closed`)."""
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        if self._closed is None:
            self._closed = loop.create_future()
        self._shutdown_task = loop.create_task(self._shutdown())

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has finished draining and every connection is closed."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # -- connections ---------------------------------------------------------------

    def _candidates(self) -> list[Framing] | None:
        if self._protocols is None:
            return None
        return [get_framing(name) for name in self._protocols]

    def _accept(self, conn: Connection, candidates: list[Framing] | None) -> None:
        if self._closing:
            conn.abort()
            return
        self._connections.add(conn)

        def make_dispatcher(framing: Framing) -> Dispatcher:
            dispatcher = Dispatcher(
                framing.new_codec(
                    Role.SERVER, self._codec_config, self._protocol_options.get(framing.name)
                ),
                on_call=self._on_call,
                on_state_change=self._state_changed,
                keepalive=self._keepalive,
            )
            self._dispatchers.add(dispatcher)
            if framing.name in KITEX_FRAMINGS:
                self._kitex.add(dispatcher)
            return dispatcher

        detecting = DetectingHandler(make_dispatcher, candidates, self._detect_timeout)
        conn.start(_TrackedHandler(self, conn, detecting))

    def _state_changed(self, dispatcher: Dispatcher, state: ConnectionState) -> None:
        if state is _CONN_DISCONNECTED:
            self._dispatchers.discard(dispatcher)
            self._kitex.discard(dispatcher)
        callback = self._on_connection_state
        if callback is not None:
            callback(dispatcher, state)

    def _connection_gone(self, conn: Connection) -> None:
        self._connections.discard(conn)

    # -- calls ---------------------------------------------------------------------

    def _resolve(self, call: CallStarted) -> tuple[str, MethodPlan | None]:
        """Find the method a call names loosely: by method name alone when no service is
        named (restricted to methods taking the call's encoding; a name served by several
        services is ambiguous), else by the service name without namespace or case (Kitex's
        ``isn`` is the bare IDL service name)."""
        method = call.method
        if call.service:
            names = self._aliases.get(call.service.lower()) or self._aliases.get(
                call.service.lower().rpartition(".")[2], []
            )
            found = [(n, self._methods.get((n, method))) for n in names]
            candidates = [(n, plan) for n, plan in found if plan is not None]
        else:
            candidates = self._by_method.get(method, [])
        if call.encoding and len(candidates) > 1:
            candidates = [c for c in candidates if c[1].encoding == call.encoding]
        if len(candidates) == 1:
            return candidates[0]
        return call.service, None

    def _unknown(self, stream: RPCStream, call: CallStarted) -> None:
        if stream.dispatcher in self._kitex:
            message = f"unknown service {call.service}, method {call.method}"
        elif not call.service:
            served = [n for n, _ in self._by_method.get(call.method, [])]
            message = (
                f"method {call.method!r} is served by several services ({', '.join(served)}); "
                "the call must name one"
                if len(served) > 1
                else f"unknown method {call.method!r}"
            )
        elif call.service in self._services:
            message = f"unknown method {call.method!r} of service {call.service!r}"
        else:
            message = f"unknown service {call.service!r}"
        stream.send_trailers(_UNIMPLEMENTED, message, ())

    def _on_call(self, stream: RPCStream, call: CallStarted) -> None:
        service = call.service
        last = self._last_method  # most calls name the method the last one did
        if service == last[0] and call.method == last[1]:
            plan: MethodPlan | None = last[2]
        else:
            plan = self._methods.get((service, call.method))
            if plan is not None:
                self._last_method = (service, call.method, plan)
        encoding = call.encoding
        if plan is None or (encoding and encoding != plan.encoding):
            # Not an exact hit, or an exact hit for another payload encoding (Kitex's bare
            # isn "Echo" names both a Thrift "Echo" and a protobuf "tether.demo.Echo").
            resolved, found = self._resolve(call)
            if found is not None:
                service, plan = resolved, found
            elif plan is None:
                self._unknown(stream, call)
                return
        if self._closing:
            stream.send_trailers(_UNAVAILABLE, "server is shutting down", ())
            return
        # A "raw" call carries bytes the caller encoded itself: any method takes them.
        if encoding and encoding not in (plan.encoding, "raw"):
            stream.send_trailers(
                _INVALID_ARGUMENT,
                f"{call.service}/{call.method} takes {plan.encoding!r} payloads, "
                f"not {call.encoding!r}",
                (),
            )
            return
        dispatcher = stream.dispatcher
        timeout = call.timeout
        deadline = None if timeout is None else dispatcher.loop.time() + timeout
        ctx = ServerContext(service, call.method, call.metadata, dispatcher, deadline)
        active = ActiveCall(plan, stream, ctx, self._tasks, dispatcher in self._kitex)
        stream.observer = active
        if timeout is not None:
            active.timer = dispatcher.loop.call_later(timeout, active.expire)
        if plan.client_streaming or stream.has_request():
            active.start()
        else:
            # Start once the request is here: the handler can then run to completion
            # inside this read callback, with no Task and no extra loop turn.
            stream.on_ready = active.start

    # -- shutdown ------------------------------------------------------------------

    async def _shutdown(self) -> None:
        try:
            for listener in self._listeners:
                try:
                    await listener.aclose()
                except Exception:
                    logger.exception("closing listener %s failed", listener.address)
            for dispatcher in list(self._dispatchers):
                dispatcher.go_away("server is shutting down")
            if self._tasks:
                _, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            for conn in list(self._connections):
                conn.close()
            for conn in list(self._connections):
                try:
                    await asyncio.wait_for(conn.wait_closed(), timeout=1.0)
                except (TimeoutError, Exception):
                    conn.abort()
        finally:
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)


class _TrackedHandler(ConnectionHandler):
    """Detection plus bookkeeping of the server's open connections."""

    def __init__(self, server: Server, conn: Connection, inner: DetectingHandler) -> None:
        self._server = server
        self._conn = conn
        self._wrapped = inner

    def on_active(self, conn: Connection) -> None:
        self._wrapped.on_active(conn)

    def on_read(self, conn: Connection) -> None:
        self._wrapped.on_read(conn)

    def on_eof(self, conn: Connection) -> None:
        self._wrapped.on_eof(conn)

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._server._connection_gone(conn)
        self._wrapped.on_inactive(conn, exc)
