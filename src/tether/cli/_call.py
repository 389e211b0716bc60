"""``tether call``: one call to any known method, requests and replies as JSON lines."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thriftpy2.thrift import TException

from .._calls import Call
from .._client import Client
from .._config import TLSConfig
from .._exceptions import ConfigError, RPCError, StatusError, TransportError
from .._metadata import Metadata, is_binary_key
from .._service import Cardinality
from .._status import Status
from .._types import MetadataValue
from ..encoding import DecodeError, message_from_json, message_to_json
from ..thrift import ThriftStub
from ._errors import EXIT_FAILED, UsageError, describe_status
from ._schemas import MethodSchema, ThriftMethod, default_schemas
from ._tls import client_tls

#: Receives each reply as one line of JSON.
Emit = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOptions:
    """Everything ``tether call`` was given on its command line."""

    url: str
    method: str
    data: Sequence[str] = ()
    metadata: Sequence[str] = ()
    timeout: float | None = None
    protocol: str = "tether"
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    thrift: Sequence[Path] = ()
    proto_modules: Sequence[str] = ()


async def run_call(options: CallOptions) -> int:
    """Make the call, print each reply as a JSON line; return the exit status.

    Raises:
        UsageError: the command line is wrong (unknown method, bad JSON, bad flags).
    """
    method = default_schemas(options.thrift, options.proto_modules).resolve(options.method)
    requests = parse_requests(method, options.data)
    metadata = parse_metadata(options.metadata)
    if options.timeout is not None and not options.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    try:
        client = Client(
            options.url, protocol=options.protocol, tls=_tls_settings(options), metadata=metadata
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    try:
        async with client, asyncio.timeout(options.timeout):
            await invoke(client, method, requests, options.timeout, print_line)
    except TimeoutError:
        return _fail(f"{Status.DEADLINE_EXCEEDED.name}: deadline exceeded ({options.timeout:g}s)")
    except StatusError as exc:
        return _fail(describe_status(exc))
    except TransportError as exc:
        return _fail(f"{Status.UNAVAILABLE.name}: {exc}")
    except TException as exc:
        return _fail(describe_thrift_exception(exc))
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    return 0


def _tls_settings(options: CallOptions) -> TLSConfig | None:
    return client_tls(
        options.url,
        cacert=options.cacert,
        cert=options.cert,
        key=options.key,
        server_name=options.server_name,
    )


def _fail(line: str) -> int:
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    return EXIT_FAILED


# -- the command line ----------------------------------------------------------------------


def parse_requests(method: MethodSchema, data: Sequence[str]) -> list[Any]:
    """One request message per ``--data``, checked against the method's cardinality.

    Raises:
        UsageError: the wrong number of ``--data``, bad JSON, or JSON that does not fit
            the request type.
    """
    cardinality = method.cardinality
    if not cardinality.client_streaming and len(data) != 1:
        kind = "unary" if cardinality is Cardinality.UNARY else "server-streaming"
        raise UsageError(f"{method.path} is {kind}: pass exactly one --data (got {len(data)})")
    return [_parse_request(method, text, index) for index, text in enumerate(data, 1)]


def _parse_request(method: MethodSchema, text: str, index: int) -> Any:
    where = f"--data #{index}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a JSON object, not {type(value).__name__}")
    if isinstance(method, ThriftMethod):
        tp: Any = method.args_cls
        value = thrift_arguments(method, value)
    else:
        tp = method.request_type
    try:
        return message_from_json(value, tp)
    except DecodeError as exc:
        raise UsageError(f"{where} does not fit {_type_name(tp)}: {exc}") from exc


def thrift_arguments(method: ThriftMethod, value: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``method``'s argument struct.

    ``value`` is keyed by argument names (``{"req": {...}}``); when the method takes a
    single argument and ``value`` is not keyed that way, ``value`` is that argument.
    """
    names = method.arg_names
    if len(names) == 1 and (not value or not set(value) <= set(names)):
        return {names[0]: value}
    return value


def _type_name(tp: Any) -> str:
    return str(getattr(tp, "__qualname__", None) or getattr(tp, "__name__", repr(tp)))


def parse_metadata(items: Sequence[str]) -> Metadata:
    """``KEY=VALUE`` pairs; values of ``-bin`` keys are base64.

    Raises:
        UsageError: a pair without ``=``, an invalid key, or bad base64.
    """
    pairs: list[tuple[str, MetadataValue]] = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata {item!r} must look like KEY=VALUE")
        value: MetadataValue = text
        if is_binary_key(key.lower()):
            try:
                value = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            except binascii.Error as exc:
                raise UsageError(f"--metadata {key}: -bin values are base64 ({exc})") from exc
        pairs.append((key, value))
    try:
        return Metadata(pairs)
    except ConfigError as exc:
        raise UsageError(f"--metadata: {exc}") from exc


# -- calling -------------------------------------------------------------------------------


async def invoke(
    client: Client, method: MethodSchema, requests: list[Any], timeout: float | None, emit: Emit
) -> None:
    """Call ``method`` with ``requests``; hand each reply to ``emit`` as it arrives.

    Raises:
        StatusError: the call failed.
        TException: a Thrift method raised a declared exception (or the server's
            TApplicationException).
    """
    if isinstance(method, ThriftMethod):
        await _invoke_thrift(client, method, requests[0], timeout, emit)
        return
    path, rq, rs = method.path, method.request_type, method.response_type
    cardinality = method.cardinality
    if cardinality is Cardinality.UNARY:
        reply = await client.unary(path, requests[0], response_type=rs, timeout=timeout)
        emit(message_to_json(reply))
    elif cardinality is Cardinality.SERVER_STREAM:
        async with client.server_stream(
            path, requests[0], response_type=rs, timeout=timeout
        ) as call:
            async for reply in call:
                emit(message_to_json(reply))
    elif cardinality is Cardinality.CLIENT_STREAM:
        async with client.client_stream(
            path, request_type=rq, response_type=rs, timeout=timeout
        ) as call:
            for request in requests:
                await call.send(request)
            emit(message_to_json(await call.response()))
    else:
        async with client.bidi_stream(
            path, request_type=rq, response_type=rs, timeout=timeout
        ) as call:
            await _bidi(call, requests, emit)


async def _bidi(call: Call[Any, Any], requests: list[Any], emit: Emit) -> None:
    """Send every request while printing replies as they arrive."""

    async def send_all() -> None:
        for request in requests:
            await call.send(request)
        await call.done_writing()

    def sender_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            call.cancel()  # unblock the reader; the sender's error is raised below

    sender = asyncio.create_task(send_all())
    sender.add_done_callback(sender_done)
    try:
        async for reply in call:
            emit(message_to_json(reply))
    finally:
        sender.cancel()
        await asyncio.wait([sender])
    error = None if sender.cancelled() else sender.exception()
    if error is not None and not isinstance(error, StatusError):
        raise error


async def _invoke_thrift(
    client: Client, method: ThriftMethod, args: Any, timeout: float | None, emit: Emit
) -> None:
    stub = ThriftStub(client, method.service_cls, name=method.service_name)
    values = [getattr(args, name) for name in method.arg_names]
    result = await getattr(stub, method.name)(*values, timeout=timeout)
    if method.oneway:
        await _confirm_read(client)
    elif result is not None:
        emit(thrift_result_json(method, result))


async def _confirm_read(client: Client) -> None:
    """Wait until the server has read everything sent so far (a PING round trip).

    A oneway call returns once its bytes are queued; closing the connection right away
    can reset it before the server has read them, and the call is lost.
    """
    try:
        await client.ping()
    except RPCError:
        pass  # best effort: a protocol without PING cannot confirm anything more


# -- output --------------------------------------------------------------------------------


def print_line(line: str) -> None:
    """Print one reply's JSON line, flushed at once (streamed replies show up as they arrive)."""
    print(line, flush=True)


def thrift_result_json(method: ThriftMethod, value: Any) -> str:
    """The JSON of a Thrift method's return value, typed by its result struct's ``success``."""
    result_cls = getattr(method.service_cls, f"{method.name}_result")
    text = message_to_json(result_cls(success=value))
    prefix = '{"success":'
    if not (text.startswith(prefix) and text.endswith("}")):  # pragma: no cover - _json's format
        raise AssertionError(f"unexpected result JSON {text!r}")
    return text[len(prefix) : -1]


def describe_thrift_exception(exc: BaseException) -> str:
    """``STATUS_NAME: message`` for a declared exception with an int ``code`` (0..16) and a
    ``message``; ``UNKNOWN: <repr>`` for any other.
    """
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if (
        isinstance(code, int)
        and not isinstance(code, bool)
        and 0 <= code <= 16
        and isinstance(message, str)
    ):
        return f"{Status(code).name}: {message}"
    return f"{Status.UNKNOWN.name}: {exc!r}"
