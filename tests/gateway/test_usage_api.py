"""Usage events through REST: correcting one by id or by idempotency key, listing with filters,
and the usage of the current period when no window is given."""

from datetime import datetime, timedelta

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import event, subscribe, usage_plan


async def _usage(api: Api, subscription: dict[str, str]) -> str:
    found = await api.get(f"/api/v1/subscriptions/{subscription['id']}/usage")
    assert found.status_code == 200, found.text
    [summary] = found.json()["summaries"]
    value: str = summary["value"]
    return value


async def test_an_event_is_canceled_by_id_or_key_and_leaves_the_summary(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    posted = [
        await api.post("/api/v1/usage-events", event(subscription, q, idempotencyKey=f"k{q}"))
        for q in ("5", "7", "11")
    ]
    ids = [p.json()["eventId"] for p in posted]
    assert await _usage(api, subscription) == "23"

    by_id = await api.post(f"/api/v1/usage-events/{ids[0]}/cancel", {"reason": "double count"})
    assert by_id.status_code == 200, by_id.text
    canceled = by_id.json()
    assert (canceled["id"], canceled["quantity"], canceled["cancelReason"]) == (
        ids[0],
        "5",
        "double count",
    )
    assert "cancelTime" in canceled
    assert await _usage(api, subscription) == "18"
    again = await api.post(f"/api/v1/usage-events/{ids[0]}/cancel", {"reason": "other"})
    assert again.json() == canceled

    by_key = await api.post(
        "/api/v1/usage-events/cancel",
        {"subscriptionId": subscription["id"], "idempotencyKey": "k7"},
    )
    assert (by_key.status_code, by_key.json()["id"], by_key.json()["cancelReason"]) == (
        200,
        ids[1],
        "",
    )
    assert await _usage(api, subscription) == "11"

    unknown_key = await api.post(
        "/api/v1/usage-events/cancel",
        {"subscriptionId": subscription["id"], "idempotencyKey": "k9"},
    )
    unknown_id = await api.post("/api/v1/usage-events/ev_missing/cancel", {})
    no_key = await api.post("/api/v1/usage-events/cancel", {"subscriptionId": subscription["id"]})
    answers = [
        (r.status_code, r.json()["error"]["param"]) for r in (unknown_key, unknown_id, no_key)
    ]
    assert answers == [(404, "idempotencyKey"), (404, "id"), (400, "idempotencyKey")]
    assert await _usage(api, subscription) == "11"


async def test_events_are_listed_by_key_and_time_window(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    start = datetime.fromisoformat(subscription["currentPeriodStart"])

    def at(minute: int) -> str:
        return (start + timedelta(minutes=minute)).isoformat()

    # Within the 5 minutes of clock skew metering allows ahead of its clock (the period start).
    for minute, key in ((1, "a"), (2, "b"), (3, "a"), (4, "a")):
        occurred = at(minute)
        response = await api.post(
            "/api/v1/usage-events",
            event(subscription, minute, eventKey=key, occurredAt=occurred),
        )
        assert response.status_code == 200, response.text

    async def listed(**query: str) -> list[str]:
        found = await api.get("/api/v1/usage-events", subscriptionId=subscription["id"], **query)
        assert found.status_code == 200, found.text
        return [e["quantity"] for e in found.json()["data"]]

    assert await listed() == ["1", "2", "3", "4"]
    assert await listed(eventKey="a") == ["1", "3", "4"]
    window = {"from": at(2), "to": at(4)}
    assert await listed(**window) == ["2", "3"]
    assert await listed(eventKey="a", **window) == ["3"]
    naive = await api.get(
        "/api/v1/usage-events", subscriptionId=subscription["id"], **{"from": at(2)[:19]}
    )
    assert (naive.status_code, naive.json()["error"]["param"]) == (400, "from")


async def test_the_usage_without_a_window_is_the_current_period(api: Api) -> None:
    """A newcomer's first call was a 400 "from: Field required"."""
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    await api.post("/api/v1/usage-events", event(subscription, "2.5"))
    found = await api.get(f"/api/v1/subscriptions/{subscription['id']}/usage")
    assert found.status_code == 200, found.text
    usage = found.json()
    assert (usage["startTime"], usage["endTime"]) == (
        subscription["currentPeriodStart"],
        subscription["currentPeriodEnd"],
    )
    assert [(s["eventKey"], s["value"]) for s in usage["summaries"]] == [("token_generated", "2.5")]
    # One bound given: the other is the current period's.
    until = await api.get(
        f"/api/v1/subscriptions/{subscription['id']}/usage", to=subscription["currentPeriodStart"]
    )
    assert (until.status_code, until.json()["error"]["param"]) == (400, "to")
    since = await api.get(
        f"/api/v1/subscriptions/{subscription['id']}/usage",
        **{"from": subscription["currentPeriodStart"]},
    )
    assert (since.json()["endTime"], since.json()["summaries"][0]["value"]) == (
        subscription["currentPeriodEnd"],
        "2.5",
    )
    missing = await api.get("/api/v1/subscriptions/sub_missing/usage")
    assert missing.status_code == 404
