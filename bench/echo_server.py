"""The unary baseline: a trivial grpc.aio server answering RecordUsageEvent with an empty
response, doing nothing else. `python -m bench.echo_server PORT`."""

import asyncio
import sys
from typing import Any

import grpc

from billing.metering.v1 import metering_pb2 as pb


async def echo(request: pb.RecordUsageEventRequest, context: Any) -> pb.RecordUsageEventResponse:
    return pb.RecordUsageEventResponse()


async def serve(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "billing.metering.v1.MeteringService",
        {
            "RecordUsageEvent": grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=pb.RecordUsageEventRequest.FromString,
                response_serializer=pb.RecordUsageEventResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
