"""How a client call without a stub finds its payload codecs and splits its method path."""

from __future__ import annotations

import functools
from typing import Any, Final

from ._exceptions import ConfigError
from ._service import _resolve
from .encoding import PayloadCodec, codec_for_type


@functools.lru_cache(maxsize=256)
def _codec_for_sample(tp: type[Any]) -> PayloadCodec[Any]:
    """The codec for a request of type ``tp``: ``codec_for_type`` depends only on the
    type, so the answer is cached (``NoneType`` gets the codec of ``None``)."""
    return codec_for_type(None if tp is type(None) else tp)


#: The raw-bytes codec: a ``bytes`` request is its own payload, a ``bytes`` reply its own
#: decoding (the client's unary path checks for it and makes neither call).
RAW: Final[PayloadCodec[Any]] = _codec_for_sample(bytes)
#: A raw call's request and reply codecs (raw replies decode as their requests encode).
_RAW_CODECS: Final[tuple[PayloadCodec[Any], PayloadCodec[Any]]] = (RAW, RAW)


def split_method(path: str) -> tuple[str, str]:
    """``"pkg.Service/Method"`` (or ``"/pkg.Service/Method"``) → ``("pkg.Service", "Method")``.

    Raises:
        ConfigError: the path has no ``/`` between service and method.
    """
    service, sep, method = path.lstrip("/").rpartition("/")
    if not sep or not service or not method:
        raise ConfigError(f"method path {path!r} must look like 'Service/Method'")
    return service, method


def payload_codecs(
    request_sample: Any, request_type: Any, response_type: Any
) -> tuple[PayloadCodec[Any], PayloadCodec[Any]]:
    """The request and reply codecs of a call made without a stub.

    ``request_type`` / ``response_type`` name them (anything ``codec_for_type`` takes);
    otherwise the request's own type picks the request codec, and raw and msgpack
    replies decode as their requests were encoded.

    Raises:
        ConfigError: no codec fits, or the reply's cannot be guessed.
    """
    if request_type is None and response_type is None and type(request_sample) is bytes:
        return _RAW_CODECS  # the common raw call, without the cache's hashing
    if request_type is not None:
        request_codec = _resolve(request_type)
    else:
        sample_type: Any = type(request_sample)  # mypy: type[Any] is not "Hashable"
        request_codec = _codec_for_sample(sample_type)
    if response_type is not None:
        response_codec = _resolve(response_type)
    elif request_codec.name in ("raw", "msgpack"):
        response_codec = request_codec
    else:
        raise ConfigError(
            f"pass response_type= to decode {request_codec.name!r} replies (or use a stub)"
        )
    return request_codec, response_codec
