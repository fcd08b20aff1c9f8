"""Liveness, readiness (every backend answers its health check) and Prometheus metrics."""

import asyncio
from typing import Any

import grpc
from fastapi import APIRouter, Request, Response
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.context import Gateway
from gateway.responses import Health, Readiness
from service_kit.channels import open_channel

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=None, responses={200: {"model": Health}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness},
        503: {"model": Readiness, "description": "A backend is down."},
    },
)
async def readyz(request: Request, response: Response) -> dict[str, Any]:
    gateway: Gateway = request.app.state.gateway
    settings = gateway.settings
    addresses = {
        "metering": settings.metering_address,
        "invoicing": settings.invoicing_address,
        "settlement": settings.settlement_address,
    }

    async def serving(address: str) -> bool:
        async with open_channel(address, gateway.backends.credentials) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # its typing stubs lack Check
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    results = await asyncio.gather(*(serving(a) for a in addresses.values()))
    backends = dict(zip(addresses, results, strict=True))
    if not all(results):
        response.status_code = 503
    return {"status": "ok" if all(results) else "unavailable", "backends": backends}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
