"""Dunning through REST: the merchant's setting for the end of the schedule, and the failed
collection attempts settlement reports, shown on the invoice."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from service_kit.proto_time import to_timestamp
from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import subscribe, usage_plan


async def patch(api: Api, body: object, **headers: str) -> Any:
    return await api.client.patch("/api/v1/merchant-settings", json=body, headers=headers)


async def test_the_final_action_is_past_due_until_the_merchant_changes_it(api: Api) -> None:
    default = await api.get("/api/v1/merchant-settings")
    assert (default.status_code, default.json()) == (200, {"dunningFinalAction": "PAST_DUE"})

    changed = await patch(api, {"dunningFinalAction": "CANCEL"})

    now = to_timestamp(api.platform.clock.now()).ToJsonString()
    expected = {"dunningFinalAction": "CANCEL", "updateTime": now}
    assert (changed.status_code, changed.json()) == (200, expected)
    assert (await api.get("/api/v1/merchant-settings")).json() == expected
    back = await patch(api, {"dunningFinalAction": "PAST_DUE"})
    assert back.json() == {"dunningFinalAction": "PAST_DUE", "updateTime": now}


async def test_a_bad_final_action_is_400_naming_it_and_changes_nothing(api: Api) -> None:
    bodies: list[object] = [{}, {"dunningFinalAction": "DELETE"}, {"dunningFinalAction": 1}, []]
    answers = []
    for body in bodies:
        refused = await patch(api, body)
        answers.append((refused.status_code, refused.json()["error"]["param"]))
    assert answers == [
        (400, "dunningFinalAction"),
        (400, "dunningFinalAction"),
        (400, "dunningFinalAction"),
        (400, None),
    ]
    assert (await api.get("/api/v1/merchant-settings")).json() == {"dunningFinalAction": "PAST_DUE"}


async def test_an_invoice_lists_its_failed_collection_attempts(api: Api) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    created = await api.post(
        "/api/v1/invoices",
        {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": "2"},
    )
    invoice = created.json()
    assert (invoice["paymentAttempts"], "nextPaymentAttemptTime" in invoice) == ([], False)
    now = api.platform.clock.now()
    at = to_timestamp(now).ToJsonString()
    retry = to_timestamp(now.replace(year=now.year + 1)).ToJsonString()
    # Settlement's report (service to service, no REST).
    for number, next_time in ((1, retry), (2, None)):
        request = pb.ReportPaymentAttemptFailureRequest(
            invoice_id=invoice["id"],
            attempt_number=number,
            reason=pb.PAYMENT_FAILURE_REASON_NO_MANDATE,
            detail="no mandate",
        )
        if next_time is not None:
            request.next_attempt_time.FromJsonString(next_time)
        await api.platform.invoicing_stub.ReportPaymentAttemptFailure(
            request, metadata=(("x-merchant-id", api.merchant_id),)
        )
        found = (await api.get(f"/api/v1/invoices/{invoice['id']}")).json()
        if number == 1:
            assert found["nextPaymentAttemptTime"] == retry

    attempts = [
        {
            "number": 1,
            "attemptTime": at,
            "reason": "NO_MANDATE",
            "detail": "no mandate",
            "nextAttemptTime": retry,
        },
        {"number": 2, "attemptTime": at, "reason": "NO_MANDATE", "detail": "no mandate"},
    ]
    assert (found["status"], found["paymentAttempts"]) == ("OPEN", attempts)
    assert "nextPaymentAttemptTime" not in found
    listed = await api.get("/api/v1/invoices", subscriptionId=subscription["id"])
    assert [i["paymentAttempts"] for i in listed.json()["data"]] == [attempts]
    past_due = await api.get(f"/api/v1/subscriptions/{subscription['id']}")
    assert past_due.json()["status"] == "PAST_DUE"
