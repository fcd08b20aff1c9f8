"""The server's standard services: health and reflection (what ghz and grpcurl rely on)."""

from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from metering_svc import bootstrap
from metering_svc.service_layer.unit_of_work import Metering
from tests.conftest import service_channel


async def test_health_and_reflection_name_the_metering_service(metering: Metering) -> None:
    running = await bootstrap.start(metering)
    try:
        async with service_channel(running.port) as channel:
            # The typing stubs of these generated clients lack their methods.
            health_stub: Any = health_pb2_grpc.HealthStub(channel)
            stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
            health = await health_stub.Check(
                health_pb2.HealthCheckRequest(service="billing.metering.v1.MeteringService")
            )
            responses = [
                r
                async for r in stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")])
                )
            ]
        names = {s.name for s in responses[0].list_services_response.service}
    finally:
        await running.stop(0)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert names == {
        "billing.metering.v1.MeteringService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
