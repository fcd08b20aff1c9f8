"""The baselines of the gRPC paths: a trivial grpc.aio server answering RecordUsageEvent with an
empty response, and each message of a StreamUsageEvents stream with an empty result, doing nothing
else. `python -m bench.echo_server PORT`."""

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from billing.metering.v1 import metering_pb2 as pb


async def echo(request: pb.RecordUsageEventRequest, context: Any) -> pb.RecordUsageEventResponse:
    return pb.RecordUsageEventResponse()


async def echo_stream(
    requests: AsyncIterator[pb.UsageEventInput], context: Any
) -> AsyncIterator[pb.UsageEventResult]:
    async for _ in requests:
        yield pb.UsageEventResult()


async def serve(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "billing.metering.v1.MeteringService",
        {
            "RecordUsageEvent": grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=pb.RecordUsageEventRequest.FromString,
                response_serializer=pb.RecordUsageEventResponse.SerializeToString,
            ),
            "StreamUsageEvents": grpc.stream_stream_rpc_method_handler(
                echo_stream,
                request_deserializer=pb.UsageEventInput.FromString,
                response_serializer=pb.UsageEventResult.SerializeToString,
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
