"""What an attacker or a careless client sends the gateway: numbers that would take hundreds of MB
to write out, deep nesting, types JSON blurs, repeated keys, wrong keys by the hundred, retries
after a crash; and what the gateway keeps at rest. Every refusal is 400 (or 413/429) naming the
field, never a 5xx."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from gateway.app import create_app
from gateway.errors import from_status
from gateway.merchants import revoke_api_key
from service_kit import migrations
from service_kit.clock import ManualClock
from service_kit.database import create_engine, session_factory
from service_kit.secret_box import SecretBox
from tests.conftest import SECRETS_KEY, TEST_START, Platform, scratch_database
from tests.faults.waiting import eventually
from tests.gateway.conftest import Api, gateway_settings, new_merchant, serving
from tests.gateway.test_rest_api import event, subscribe, usage_plan

MIGRATIONS = Path(__file__).parents[2] / "gateway" / "migrations"
EVENT_IDS = '"serviceId": "svc_x", "subscriptionId": "sub_x", "userId": "usr_x", "eventKey": "k"'
NUMBER_BOUND = "must be a number of at most 64 characters written out in full"


async def raw_post(api: Api, path: str, body: str, **headers: str) -> httpx.Response:
    return await api.client.post(
        path, content=body, headers={"content-type": "application/json", **headers}
    )


def refusal(response: httpx.Response) -> tuple[int, str, str | None]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["param"]


async def test_a_number_too_long_to_write_out_is_400_naming_its_field(api: Api) -> None:
    """1e100000000 took the gateway 390 MB and answered 429; 1e999999999999999999 was a 500."""
    cases = [
        ("/api/v1/usage-events", f'{{{EVENT_IDS}, "quantity": {{}}}}', "quantity"),
        (
            "/api/v1/usage-events/batch",
            f'{{"events": [{{{EVENT_IDS}, "quantity": {{}}}}]}}',
            "events.quantity",
        ),
        (
            "/api/v1/services/svc_x/plans",
            '{"name": "p", "pricingType": "USAGE_BASED", "billingInterval": "MONTH", "amount": {}}',
            "amount",
        ),
        ("/api/v1/subscriptions/sub_x/test-clock/advance", '{"seconds": {}}', "seconds"),
        # A number where no field takes one is refused all the same.
        ("/api/v1/services", '{"name": "s", "extra": {"deep": {}}}', "extra.deep"),
    ]
    numbers = [
        "1e100000000",
        "1e999999999999999999",
        "1e99999999999999999999999",  # beyond what Decimal holds at all
        "1" * 5000,  # beyond Python's 4,300-digit int conversion
        "0." + "0" * 70 + "1",
        "-" + "9" * 65,
    ]
    for path, template, field in cases:
        for number in numbers:
            response = await raw_post(api, path, template.replace("{}", number, 1))
            assert refusal(response) == (400, "invalid_field", field), (path, number[:30])
            assert response.json()["error"]["message"] == f"{field}: {NUMBER_BOUND}"
    # As a string, where a decimal string is allowed, the same bound holds.
    as_string = await raw_post(
        api, "/api/v1/usage-events", f'{{{EVENT_IDS}, "quantity": "1e100000000"}}'
    )
    assert refusal(as_string) == (400, "invalid_field", "quantity")
    assert as_string.json()["error"]["message"] == f"quantity: Value error, {NUMBER_BOUND}"
    # The longest number that fits still reaches the service, which judges it.
    longest = await raw_post(api, "/api/v1/usage-events", f'{{{EVENT_IDS}, "quantity": 1e63}}')
    assert refusal(longest) == (400, "invalid_argument", "quantity")


def test_a_message_over_a_grpc_size_limit_is_413_without_the_servers_words() -> None:
    error = from_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "SERVER: Received message larger than max (41943040 vs. 33554432)",
        "",
    )
    assert (error.status, error.type, error.code, error.param) == (
        413,
        "invalid_request_error",
        "request_too_large",
        "",
    )
    assert error.message == "the request is larger than a billing service accepts"


async def test_deep_nesting_is_400_not_a_recursion_error(api: Api) -> None:
    """A 2 KB body nested 1,000 deep was a 500 (RecursionError); 100,000 deep, where the recursion
    limit is raised, crashes the parser."""
    for depth in (1000, 100_000, 32):
        body = '{"name": ' + "[" * depth + "]" * depth + "}"
        response = await raw_post(api, "/api/v1/services", body)
        assert refusal(response) == (400, "invalid_json", None), depth
        assert response.json()["error"]["message"] == (
            "the body nests objects and arrays more than 32 deep"
        )
    # 32 levels, the outer object included, reach the schema, which names the field; brackets
    # inside a string are no nesting.
    shallow = await raw_post(api, "/api/v1/services", '{"name": ' + "[" * 31 + "]" * 31 + "}")
    assert refusal(shallow) == (400, "invalid_field", "name")
    named = await raw_post(api, "/api/v1/services", '{"name": "' + "[{" * 50 + '"}')
    assert (named.status_code, named.json()["name"]) == (200, "[{" * 50)


async def test_booleans_naive_moments_and_repeated_keys_are_400_naming_the_field(
    api: Api,
) -> None:
    advance = await api.post("/api/v1/subscriptions/sub_x/test-clock/advance", {"seconds": True})
    assert refusal(advance) == (400, "invalid_field", "seconds")
    plan = await api.post(
        "/api/v1/services/svc_x/plans",
        {
            "name": "p",
            "pricingType": "FIXED_RECURRING",
            "billingInterval": "MONTH",
            "amount": "1",
            "intervalCount": True,
        },
    )
    assert refusal(plan) == (400, "invalid_field", "intervalCount")
    quantity = await raw_post(api, "/api/v1/usage-events", f'{{{EVENT_IDS}, "quantity": true}}')
    assert refusal(quantity) == (400, "invalid_field", "quantity")

    naive = "2026-11-26T10:00:00"
    single = await raw_post(
        api,
        "/api/v1/usage-events",
        f'{{{EVENT_IDS}, "quantity": 1, "occurredAt": "{naive}"}}',
    )
    assert refusal(single) == (400, "invalid_field", "occurredAt")
    assert single.json()["error"]["message"] == (
        "occurredAt: Value error, needs a time zone (e.g. Z or +02:00)"
    )
    batch = await raw_post(
        api,
        "/api/v1/usage-events/batch",
        f'{{"events": [{{{EVENT_IDS}, "quantity": 1, "occurredAt": "{naive}"}}]}}',
    )
    assert refusal(batch) == (400, "invalid_field", "events.occurredAt")
    invoice = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": "sub_x", "paymentPlanId": "plan_x", "amount": 1, "periodEnd": naive},
    )
    assert refusal(invoice) == (400, "invalid_field", "periodEnd")
    summary = await api.get(
        "/api/v1/subscriptions/sub_x/usage", **{"from": "2026-11-01T00:00:00Z", "to": naive}
    )
    assert refusal(summary) == (400, "invalid_field", "to")

    repeated = await raw_post(api, "/api/v1/services", '{"name": "a", "name": "b"}')
    assert refusal(repeated) == (400, "duplicate_key", "name")
    assert repeated.json()["error"]["message"] == "name appears more than once in its object"
    nested = await raw_post(
        api,
        "/api/v1/usage-events/batch",
        f'{{"events": [{{{EVENT_IDS}, "quantity": 1, "quantity": 2}}]}}',
    )
    assert refusal(nested) == (400, "duplicate_key", "events.quantity")
    names = [s["name"] for s in (await api.get("/api/v1/services")).json()["data"]]
    assert names == []


async def test_a_rejected_batch_event_names_its_field_as_a_single_post_does(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    future = {"occurredAt": "2099-01-01T00:00:00Z"}
    single = await api.post("/api/v1/usage-events", event(subscription, 1, **future))
    assert refusal(single) == (400, "invalid_argument", "occurredAt")
    batch = await api.post(
        "/api/v1/usage-events/batch",
        {
            "events": [
                event(subscription, 1),
                event(subscription, 1, **future),
                event(subscription, 1, userId="usr_other"),
            ]
        },
    )
    results = batch.json()["results"]
    assert [r["outcome"] for r in results] == ["ACCEPTED", "REJECTED", "REJECTED"]
    assert [r["error"]["field"] for r in results[1:]] == ["occurredAt", "userId"]


async def test_a_stored_answer_is_sealed_and_replays_its_secret(
    api: Api, db: asyncpg.Connection
) -> None:
    body = {"url": "https://merchant.example/hooks", "eventTypes": ["*"]}
    created = await api.post("/api/v1/webhook-endpoints", body, **{"Idempotency-Key": "we-1"})
    again = await api.post("/api/v1/webhook-endpoints", body, **{"Idempotency-Key": "we-1"})
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert (again.json()["secret"], again.headers["Idempotent-Replayed"]) == (secret, "true")
    sealed = await db.fetchval(
        "SELECT sealed_body FROM gateway.idempotent_responses"
        " WHERE merchant_id = $1 AND idempotency_key = 'we-1'",
        api.merchant_id,
    )
    assert secret.removeprefix("whsec_").encode() not in sealed
    assert b"merchant.example" not in sealed
    opened = json.loads(SecretBox(SECRETS_KEY, setting="GATEWAY_SECRETS_KEY").open(sealed))
    assert opened == created.json()


async def test_the_gateway_refuses_to_start_without_its_secrets_key(
    database_url: str, platform: Platform
) -> None:
    app = create_app(gateway_settings(database_url, platform, secrets_key=""))
    with pytest.raises(ValueError, match=r"^GATEWAY_SECRETS_KEY is required"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_migration_seals_answers_stored_in_clear(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with scratch_database(db, database_url, "gateway_sealing") as (url, connection):
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, "0001")
        await connection.execute(
            "INSERT INTO gateway.idempotent_responses (merchant_id, idempotency_key, fingerprint,"
            " status_code, body, create_time) VALUES ('mer_1', 'k1', 'f', 200,"
            " '{\"secret\": \"whsec_clear\"}', now()), ('mer_1', 'k2', 'f', NULL, NULL, now())"
        )
        monkeypatch.setenv("GATEWAY_SECRETS_KEY", SECRETS_KEY)
        await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, "head")
        rows = await connection.fetch(
            "SELECT idempotency_key, sealed_body FROM gateway.idempotent_responses"
            " ORDER BY idempotency_key"
        )
        version = await connection.fetchval("SELECT version FROM gateway.key_revocations")
    box = SecretBox(SECRETS_KEY, setting="GATEWAY_SECRETS_KEY")
    assert [
        (r["idempotency_key"], r["sealed_body"] and box.open(r["sealed_body"])) for r in rows
    ] == [
        ("k1", '{"secret": "whsec_clear"}'),
        ("k2", None),
    ]
    assert version == 0


async def _stored_keys(db: asyncpg.Connection, merchant_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT idempotency_key FROM gateway.idempotent_responses WHERE merchant_id = $1"
        " ORDER BY idempotency_key",
        merchant_id,
    )
    return [row["idempotency_key"] for row in rows]


async def test_answers_past_their_ttl_are_purged_in_the_background(
    database_url: str, platform: Platform, db: asyncpg.Connection
) -> None:
    clock = ManualClock(TEST_START)
    settings = gateway_settings(database_url, platform, idempotency_purge_seconds=0.05)
    merchant_id, key, _ = await new_merchant(database_url, platform)
    async with (
        serving(settings, platform, clock) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
        ) as client,
    ):
        for name in ("old-1", "old-2"):
            stored = await client.post(
                "/api/v1/services", json={"name": name}, headers={"Idempotency-Key": name}
            )
            assert stored.status_code == 200
        clock.advance(timedelta(hours=23, minutes=59))
        await client.post(
            "/api/v1/services", json={"name": "new"}, headers={"Idempotency-Key": "new"}
        )
        clock.advance(timedelta(minutes=2))
        async with asyncio.timeout(5):
            kept = await eventually(
                lambda: _stored_keys(db, merchant_id), lambda k: len(k) < 3, 0.05
            )
    assert kept == ["new"]


async def test_a_claim_left_by_a_dead_gateway_is_taken_over_after_twice_the_deadline(
    api: Api, db: asyncpg.Connection
) -> None:
    """The backend deadline is 5 s: a claim without an answer is abandoned after 12 s, not 2
    minutes."""
    now = api.platform.clock.now()
    bodies = {"young": '{"name": "y"}', "old": '{"name": "o"}'}
    for key, age in (("young", 11), ("old", 13)):
        fingerprint = hashlib.sha256(f"POST /api/v1/services\n{bodies[key]}".encode()).hexdigest()
        await db.execute(
            "INSERT INTO gateway.idempotent_responses (merchant_id, idempotency_key, fingerprint,"
            " create_time) VALUES ($1, $2, $3, $4)",
            api.merchant_id,
            key,
            fingerprint,
            now - timedelta(seconds=age),
        )
    young = await raw_post(api, "/api/v1/services", bodies["young"], **{"Idempotency-Key": "young"})
    old = await raw_post(api, "/api/v1/services", bodies["old"], **{"Idempotency-Key": "old"})
    assert refusal(young) == (409, "idempotency_key_in_use", "Idempotency-Key")
    assert (old.status_code, old.json()["name"]) == (200, "o")


@asynccontextmanager
async def _client_from(url: str, address: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from `address` (any 127.x address is this machine)."""
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        transport=httpx.AsyncHTTPTransport(local_address=address),
        trust_env=False,
    ) as client:
        yield client


async def test_failed_authentications_are_throttled_per_address_and_per_key_id(
    database_url: str, platform: Platform
) -> None:
    settings = gateway_settings(
        database_url, platform, auth_failures_per_minute=60, auth_failure_burst=3
    )
    _, key, _ = await new_merchant(database_url, platform)
    guessed = "bk_0123456789abcdef_wrong"
    async with serving(settings, platform) as url:
        async with _client_from(url, "127.0.0.2", guessed) as attacker:
            guesses = [refusal(await attacker.get("/api/v1/services")) for _ in range(4)]
            another_id = await attacker.get(
                "/api/v1/services", headers={"Authorization": "Bearer bk_fedcba9876543210_x"}
            )
        async with _client_from(url, "127.0.0.3", guessed) as elsewhere:
            same_id = await elsewhere.get("/api/v1/services")
        async with _client_from(url, "127.0.0.4", key) as merchant:
            served = await merchant.get("/api/v1/services")
    assert guesses == [(401, "invalid_api_key", None)] * 3 + [
        (429, "too_many_failed_authentications", None)
    ]
    # The attacker's address is held up whatever key it tries, and the guessed key id is held
    # up from any address; a merchant's key from another address is served.
    for held_up in (another_id, same_id):
        assert refusal(held_up) == (429, "too_many_failed_authentications", None)
        assert held_up.headers["Retry-After"] == "1"
        assert held_up.json()["error"]["type"] == "rate_limit_error"
    assert served.status_code == 200


async def test_a_revoked_key_fails_on_every_gateway_within_a_second(
    database_url: str, platform: Platform
) -> None:
    """Two gateway processes remember the key (for 30 s); the revocation reaches both at their
    next poll of the revocation version."""
    settings = gateway_settings(database_url, platform)
    _, key, _ = await new_merchant(database_url, platform)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        serving(settings, platform) as first,
        serving(settings, platform) as second,
        httpx.AsyncClient(headers=headers, trust_env=False) as client,
    ):
        urls = [f"{first}/api/v1/services", f"{second}/api/v1/services"]
        assert [(await client.get(u)).status_code for u in urls] == [200, 200]
        engine = create_engine(database_url, pool_size=1)
        async with session_factory(engine)() as session, session.begin():
            assert await revoke_api_key(session, key, platform.clock.now())
        await engine.dispose()

        async def both() -> list[httpx.Response]:
            return [await client.get(u) for u in urls]

        # Within about a second: the poll interval, plus a margin for the poll itself.
        async with asyncio.timeout(1.5):
            answers = await eventually(both, lambda a: all(r.status_code == 401 for r in a), 0.05)
    assert [refusal(a) for a in answers] == [(401, "invalid_api_key", None)] * 2
