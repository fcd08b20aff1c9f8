"""A backend service away (killed, or hung by SIGSTOP): the gateway answers 503 at its backend
deadline (every gRPC call has one), and the same gateway process serves the very next request
once the service is back."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.conftest import TEST_TIMEOUT_SECONDS, FaultPlatform, new_merchant_id
from tests.faults.load import report

# GATEWAY_BACKEND_DEADLINE_SECONDS of the fault platform, and what a loaded machine may add.
DEADLINE_SECONDS, MARGIN_SECONDS = 2.0, 1.0


async def _timed_get(client: httpx.AsyncClient) -> tuple[int, str, float]:
    began = time.perf_counter()
    response = await client.get("/api/v1/meters")
    code = response.json()["error"]["code"] if response.status_code != 200 else ""
    return response.status_code, code, time.perf_counter() - began


async def test_gateway_answers_503_at_the_deadline_and_recovers_by_itself(
    fault_platform: FaultPlatform,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
        key = await fault_platform.api_key(new_merchant_id("backend_down"))
        gateway_pid = fault_platform.gateway.pid
        async with fault_platform.rest_client(key) as client:
            assert (await _timed_get(client))[:2] == (200, "")

            # Killed: connections are refused; the call waits for it up to the deadline.
            fault_platform.metering.kill()
            refused = [await _timed_get(client) for _ in range(2)]
            await fault_platform.start(fault_platform.metering)
            after_restart = await _timed_get(client)
            # Hung (SIGSTOP): the port accepts, nothing answers; the deadline cuts the call.
            fault_platform.metering.pause()
            try:
                hung = [await _timed_get(client) for _ in range(2)]
            finally:
                fault_platform.metering.resume()
            after_resume = await _timed_get(client)

        report(
            "backend down",
            {
                "deadline_seconds": DEADLINE_SECONDS,
                "refused_503_seconds": [round(seconds, 3) for _, _, seconds in refused],
                "hung_503_seconds": [round(seconds, 3) for _, _, seconds in hung],
                "first_request_after_restart": after_restart[0],
                "first_request_after_resume": after_resume[0],
            },
        )
        assert fault_platform.gateway.pid == gateway_pid
        for answers in (refused, hung):
            assert [(status, code) for status, code, _ in answers] == [
                (503, "backend_unavailable")
            ] * 2
            assert all(
                DEADLINE_SECONDS <= seconds < DEADLINE_SECONDS + MARGIN_SECONDS
                for _, _, seconds in answers
            )
        assert after_restart[:2] == after_resume[:2] == (200, "")
