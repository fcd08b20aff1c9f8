"""schemathesis against the live gateway's own OpenAPI document: every operation, authenticated,
with valid and invalid generated requests, over uvicorn, the real services and PostgreSQL."""

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Platform
from tests.gateway.conftest import Api, gateway_settings, new_merchant, serving
from tests.gateway.test_rest_api import event, subscribe, usage_plan

# Per operation and generation mode; where the path names an object, half of them name a real one.
EXAMPLES = 70
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Report:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    operations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def fuzz(base_url: str, key: str, objects: dict[str, str]) -> Report:
    """Runs every operation of the served document; blocking, so it runs in a thread."""
    report = Report()
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {key}"

    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        report.requests += 1
        report.statuses[response.status_code] += 1

    session.hooks["response"].append(count)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.failures.append(f"the document has an invalid operation: {result.err()}")
            continue
        operation = result.ok()
        report.operations.append(operation.label)
        real = {p.name: objects[p.name] for p in operation.path_parameters if p.name in objects}
        # Any string is a valid path id: only a query or a body can be made invalid.
        negatable = len(operation.query) + len(operation.body) > 0
        modes = [schemathesis.GenerationMode.POSITIVE]
        if negatable:
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)
            if real:
                strategy = st.one_of(
                    strategy, operation.as_strategy(generation_mode=mode, path_parameters=real)
                )
            try:
                _run(strategy, lambda case: _call(case, session, base_url))
            except (
                AssertionError,
                schemathesis.errors.FailureGroup,
                hypothesis.errors.Unsatisfiable,
            ) as error:
                report.failures.append(f"{operation.label} ({mode.value}): {error}")
    return report


def _call(case: schemathesis.Case[Any], session: requests.Session, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=30)


def _run(strategy: st.SearchStrategy[schemathesis.Case[Any]], test: Callable[[Any], None]) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=False,
    )
    @hypothesis.given(strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        test(case)

    run()


async def seeded_objects(api: Api) -> dict[str, str]:
    """One object of each kind the paths name, so generated requests also reach real ones."""
    service, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    invoice = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": "1"},
    )
    session = await api.post(
        "/api/v1/checkout-sessions",
        {
            "planId": plan["id"],
            "successUrl": "https://m.example/ok",
            "cancelUrl": "https://m.example/no",
        },
    )
    endpoint = await api.post(
        "/api/v1/webhook-endpoints", {"url": "https://m.example/h", "eventTypes": ["*"]}
    )
    recorded = await api.post("/api/v1/usage-events", event(subscription, 1))
    meter = await api.post(
        "/api/v1/meters", {"serviceId": service["id"], "eventKey": "seats", "aggregation": "MAX"}
    )
    return {
        "service_id": service["id"],
        "plan_id": plan["id"],
        "subscription_id": subscription["id"],
        "invoice_id": invoice.json()["id"],
        "session_id": session.json()["id"],
        "endpoint_id": endpoint.json()["id"],
        "event_id": recorded.json()["eventId"],
        "meter_id": meter.json()["id"],
        "customer_id": subscription["userId"],
    }


async def test_every_operation_answers_generated_requests_as_documented(
    database_url: str, platform: Platform
) -> None:
    # No rate limit in the way: thousands of requests in a couple of minutes.
    settings = gateway_settings(
        database_url,
        platform,
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
        public_rate_limit_per_minute=1_000_000,
        public_rate_limit_burst=1_000_000,
    )
    merchant_id, key, wallet = await new_merchant(database_url, platform)
    async with serving(settings, platform) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
        ) as client:
            objects = await seeded_objects(Api(client, merchant_id, key, platform, wallet))
        report = await asyncio.to_thread(fuzz, url, key, objects)

    assert report.failures == [], "\n\n".join(report.failures)
    assert len(report.operations) == 84
    assert report.requests >= 3000, report.requests
    # Valid requests got through to the services and invalid ones were refused, both documented.
    assert {200, 400, 404} <= set(report.statuses), report.statuses
    assert all(status < 500 for status in report.statuses), report.statuses


async def test_moments_that_leave_the_calendar_in_utc_are_400(api: Api) -> None:
    """What schemathesis found: such moments were a 500 (OverflowError on the way to UTC)."""
    early, late = "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"
    summary = await api.get("/api/v1/subscriptions/sub_x/usage", **{"from": early, "to": late})
    invoice = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": "sub_x", "paymentPlanId": "plan_x", "amount": 1, "periodEnd": late},
    )
    event = await api.post(
        "/api/v1/usage-events",
        {
            "serviceId": "svc_x",
            "subscriptionId": "sub_x",
            "userId": "usr_x",
            "eventKey": "k",
            "quantity": 1,
            "occurredAt": early,
        },
    )
    answers = [(r.status_code, r.json()["error"]["param"]) for r in (summary, invoice, event)]
    assert answers == [(400, "from"), (400, "periodEnd"), (400, "occurredAt")]
