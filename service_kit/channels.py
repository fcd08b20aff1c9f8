"""The one way to open a channel to a service: mTLS when configured, and every call carrying the
internal service credential and the request id of the call it is made for."""

from collections.abc import Sequence
from typing import Any, NamedTuple

import grpc

from service_kit.credentials import AUTHORIZATION_METADATA_KEY, ServiceCredentials
from service_kit.request_ids import REQUEST_ID_METADATA_KEY, current_request_id

ChannelOptions = Sequence[tuple[str, Any]]

# A peer that was down is retried at most a second apart (gRPC's default backoff grows to two
# minutes), so a caller serves again within a second of the peer's return; calls still fail fast
# (UNAVAILABLE) while it is away.
RECONNECT_OPTIONS: ChannelOptions = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)


class _CallerMetadata:
    """Adds the credential, and the current request id unless the caller set one."""

    def __init__(self, credentials: ServiceCredentials) -> None:
        self._authorization = (AUTHORIZATION_METADATA_KEY, credentials.authorization)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        # A new Metadata: the caller's own object may be reused for other calls.
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._authorization)
        request_id = current_request_id()
        if request_id and metadata.get(REQUEST_ID_METADATA_KEY) is None:
            metadata.add(REQUEST_ID_METADATA_KEY, request_id)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# One class per call shape: a grpc.aio channel files each interceptor under its first shape only.
class _UnaryUnary(_CallerMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_CallerMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_CallerMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_CallerMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def open_channel(
    address: str, credentials: ServiceCredentials, options: ChannelOptions = ()
) -> grpc.aio.Channel:
    """An asyncio channel to `address` (host:port) whose calls carry the credential."""
    interceptors = [
        shape(credentials) for shape in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    ]
    options = [*RECONNECT_OPTIONS, *options]
    if credentials.tls is not None:
        return grpc.aio.secure_channel(
            address, credentials.tls.channel(), options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(address, options, interceptors=interceptors)


class _BlockingCallDetails(
    NamedTuple(
        "_BlockingCallDetails",
        [
            ("method", str),
            ("timeout", float | None),
            ("metadata", Any),
            ("credentials", Any),
            ("wait_for_ready", bool | None),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    pass


class _BlockingCallerMetadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """The same for a blocking channel (the readiness probes of launchers)."""

    def __init__(self, credentials: ServiceCredentials) -> None:
        self._authorization = (AUTHORIZATION_METADATA_KEY, credentials.authorization)

    def _call(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(
            _BlockingCallDetails(
                details.method,
                details.timeout,
                [*(details.metadata or ()), self._authorization],
                details.credentials,
                details.wait_for_ready,
                details.compression,
            ),
            request,
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return self._call(continuation, client_call_details, request)


def open_blocking_channel(
    address: str, credentials: ServiceCredentials, options: ChannelOptions = ()
) -> grpc.Channel:
    """A blocking channel, for code without an event loop."""
    if credentials.tls is not None:
        channel = grpc.secure_channel(address, credentials.tls.channel(), options)
    else:
        channel = grpc.insecure_channel(address, options)
    return grpc.intercept_channel(channel, _BlockingCallerMetadata(credentials))
