"""What every request goes through before its route: the request id, the access log line, and
the API-key cache with revocation."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import structlog
from structlog.testing import capture_logs

from gateway.merchants import revoke_api_key
from service_kit.database import create_engine, session_factory
from tests.conftest import Platform
from tests.gateway.conftest import Api, gateway_settings, new_merchant, serving
from tests.gateway.test_rest_api import event, subscribe, usage_plan


async def test_a_request_id_is_echoed_or_made_and_logged(api: Api) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        given = await api.client.get("/api/v1/services", headers={"X-Request-Id": "req-abc.1"})
        made = await api.client.get("/api/v1/services")
        unusable = await api.client.get("/api/v1/services", headers={"X-Request-Id": "x" * 129})
    assert given.headers["X-Request-Id"] == "req-abc.1"
    for response in (made, unusable):
        assert response.headers["X-Request-Id"].startswith("req_")
        assert len(response.headers["X-Request-Id"]) == 30
    assert made.headers["X-Request-Id"] != unusable.headers["X-Request-Id"]
    access = [entry for entry in logs if entry["event"] == "http.request"]
    assert [(e["request_id"], e["route"], e["status"]) for e in access] == [
        ("req-abc.1", "/api/v1/services", 200),
        (made.headers["X-Request-Id"], "/api/v1/services", 200),
        (unusable.headers["X-Request-Id"], "/api/v1/services", 200),
    ]
    # The key never reaches a log line.
    assert api.key not in repr(logs)


async def _revoke(database_url: str, key: str) -> bool:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await revoke_api_key(session, key, datetime.now(UTC))
    finally:
        await engine.dispose()


async def test_a_revoked_key_stops_working_within_the_cache_time(
    database_url: str, platform: Platform
) -> None:
    # The revocation version is read at start only: the cache time alone bounds the key's life.
    settings = gateway_settings(
        database_url, platform, api_key_cache_seconds=0.5, revocation_poll_seconds=3600
    )
    _, key, _ = await new_merchant(database_url, platform)
    async with (
        serving(settings, platform) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
        ) as client,
    ):
        before = (await client.get("/api/v1/services")).status_code
        assert await _revoke(database_url, key.rpartition("_")[0])
        cached = (await client.get("/api/v1/services")).status_code
        await asyncio.sleep(0.6)
        after = await client.get("/api/v1/services")
    assert (before, cached) == (200, 200)
    assert (after.status_code, after.json()["error"]["code"]) == (401, "invalid_api_key")
    assert not await _revoke(database_url, key)


async def test_concurrent_single_events_each_get_their_own_answer(
    api: Api, db: asyncpg.Connection
) -> None:
    """Posted together, single events reach metering in shared batches (gateway/usage_batcher.py);
    each request still gets its own outcome or error, and the store holds each event once."""
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    bodies = [event(subscription, "1.5", idempotencyKey=f"k{i}") for i in range(60)]
    bodies += [event(subscription, "1.5", idempotencyKey="k0")] * 10
    bodies += [event(subscription, "-1")] * 5
    bodies += [event(subscription, "1", subscriptionId="sub_missing")] * 5
    responses = await asyncio.gather(*(api.post("/api/v1/usage-events", b) for b in bodies))
    answers = [
        (r.status_code, r.json().get("outcome") or r.json()["error"]["param"]) for r in responses
    ]
    accepted = [a for a in answers if a == (200, "ACCEPTED")]
    duplicates = [a for a in answers if a == (200, "DUPLICATE")]
    assert (len(accepted), len(duplicates)) == (60, 10)
    assert answers[70:] == [(400, "quantity")] * 5 + [(404, "subscriptionId")] * 5
    first_k0 = responses[0].json()["eventId"]
    assert {r.json()["eventId"] for r in responses[60:70]} == {first_k0}
    stored = await db.fetchrow(
        "SELECT count(*), sum(quantity) FROM metering.usage_events WHERE subscription_id = $1",
        subscription["id"],
    )
    assert stored is not None
    assert (stored[0], stored[1]) == (60, Decimal("90.0"))
