"""Dunning, invoicing's side: settlement reports each failed collection attempt of an OPEN
invoice; the attempts are listed on it, each sends invoice.payment_failed, the subscription is
PAST_DUE from the first failure, and after the last one it is canceled or stays PAST_DUE as the
merchant's setting says. A payment still makes the invoice PAID and the subscription ACTIVE."""

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from billing.invoicing.v1 import invoicing_pb2 as pb
from service_kit.clock import ManualClock
from service_kit.proto_time import to_timestamp
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant
from tests.invoicing.test_invoices import retempo_invoice

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
BALANCE_DETAIL = "balance 1.000000 USDC is below 3.000000 USDC"


def rfc3339(moment: datetime) -> str:
    """A moment as protobuf's JSON writes it."""
    return to_timestamp(moment).ToJsonString()


def as_json(message: Message) -> dict[str, Any]:
    """A message as the webhooks render it."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


class Dunned:
    """One merchant's open invoice of 3 USDC on a usage plan's ACTIVE subscription, and the
    webhook events written since it was made."""

    def __init__(self, merchant: Merchant, db: asyncpg.Connection) -> None:
        self.merchant = merchant
        self.db = db
        self.mark = 0

    async def open_invoice(self) -> tuple[pb.Subscription, pb.Invoice]:
        plan = await self.merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
        subscription = await self.merchant.subscribe(plan)
        invoice = await retempo_invoice(
            self.merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="3"
        )
        await self.forget_events()
        return subscription, invoice

    async def forget_events(self) -> None:
        self.mark = await self.db.fetchval("SELECT coalesce(max(id), 0) FROM invoicing.outbox")

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(type, data) of the merchant's webhook events since the mark, in order."""
        rows = await self.db.fetch(
            "SELECT payload FROM invoicing.outbox WHERE merchant_id = $1"
            " AND topic = 'webhook.event' AND id > $2 ORDER BY id",
            self.merchant.merchant_id,
            self.mark,
        )
        payloads = [json.loads(row["payload"]) for row in rows]
        return [(p["type"], p["data"]) for p in payloads]

    async def fail(
        self,
        invoice: pb.Invoice,
        number: int,
        reason: pb.PaymentFailureReason.ValueType = pb.PAYMENT_FAILURE_REASON_INSUFFICIENT_BALANCE,
        detail: str = BALANCE_DETAIL,
        next_attempt_time: datetime | None = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> pb.Invoice:
        request = pb.ReportPaymentAttemptFailureRequest(
            invoice_id=invoice.id, attempt_number=number, reason=reason, detail=detail
        )
        if next_attempt_time is not None:
            request.next_attempt_time.CopyFrom(to_timestamp(next_attempt_time))
        return await self.merchant.stub.ReportPaymentAttemptFailure(
            request, metadata=metadata or self.merchant.metadata
        )

    async def invoice(self, invoice: pb.Invoice) -> pb.Invoice:
        return await self.merchant.stub.GetInvoice(
            pb.GetInvoiceRequest(id=invoice.id), metadata=self.merchant.metadata
        )

    async def subscription(self, subscription: pb.Subscription) -> pb.Subscription:
        return await self.merchant.stub.GetSubscription(
            pb.GetSubscriptionRequest(id=subscription.id), metadata=self.merchant.metadata
        )

    async def set_final_action(
        self, action: pb.DunningFinalAction.ValueType
    ) -> pb.MerchantSettings:
        return await self.merchant.stub.UpdateMerchantSettings(
            pb.UpdateMerchantSettingsRequest(
                settings=pb.MerchantSettings(dunning_final_action=action)
            ),
            metadata=self.merchant.metadata,
        )


@pytest.fixture
def dunned(merchant: Merchant, db: asyncpg.Connection) -> Dunned:
    return Dunned(merchant, db)


def attempt(
    number: int,
    at: datetime,
    reason: pb.PaymentFailureReason.ValueType = pb.PAYMENT_FAILURE_REASON_INSUFFICIENT_BALANCE,
    detail: str = BALANCE_DETAIL,
    next_attempt_time: datetime | None = None,
) -> pb.PaymentAttempt:
    message = pb.PaymentAttempt(
        number=number,
        attempt_time=to_timestamp(at),
        reason=reason,
        detail=detail,
    )
    if next_attempt_time is not None:
        message.next_attempt_time.CopyFrom(to_timestamp(next_attempt_time))
    return message


async def expect_error(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), field_violation(caught.value)


async def test_each_failure_is_listed_on_the_invoice_and_the_subscription_is_past_due_at_the_first(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    now = billing_clock.now()

    first = await dunned.fail(invoice, 1, next_attempt_time=now + HOUR)

    assert list(first.payment_attempts) == [attempt(1, now, next_attempt_time=now + HOUR)]
    assert first.next_payment_attempt_time == to_timestamp(now + HOUR)
    assert first.status == pb.INVOICE_STATUS_OPEN
    past_due = await dunned.subscription(subscription)
    assert past_due.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    assert await dunned.events() == [
        (
            "invoice.payment_failed",
            {
                "invoice": as_json(first),
                "attempt": {
                    "number": 1,
                    "attemptTime": rfc3339(now),
                    "reason": "PAYMENT_FAILURE_REASON_INSUFFICIENT_BALANCE",
                    "detail": BALANCE_DETAIL,
                    "nextAttemptTime": rfc3339(now + HOUR),
                },
            },
        ),
        ("subscription.updated", as_json(past_due)),
    ]

    await dunned.forget_events()
    later = billing_clock.now()
    second = await dunned.fail(
        invoice,
        2,
        reason=pb.PAYMENT_FAILURE_REASON_ALLOWANCE_TOO_LOW,
        detail="allowance 0",
        next_attempt_time=later + DAY,
    )

    expected = [
        attempt(1, now, next_attempt_time=now + HOUR),
        attempt(
            2,
            later,
            reason=pb.PAYMENT_FAILURE_REASON_ALLOWANCE_TOO_LOW,
            detail="allowance 0",
            next_attempt_time=later + DAY,
        ),
    ]
    assert list(second.payment_attempts) == expected
    assert second.next_payment_attempt_time == to_timestamp(later + DAY)
    assert await dunned.invoice(invoice) == second
    [listed] = await dunned.merchant.invoices(subscription)
    assert listed == second
    # Already PAST_DUE: the subscription does not change again.
    assert await dunned.subscription(subscription) == past_due
    [(kind, data)] = await dunned.events()
    assert (kind, data["invoice"], data["attempt"]["number"]) == (
        "invoice.payment_failed",
        as_json(second),
        2,
    )


async def test_after_the_last_failure_a_subscription_stays_past_due_by_default(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    settings = await dunned.merchant.stub.GetMerchantSettings(
        pb.GetMerchantSettingsRequest(), metadata=dunned.merchant.metadata
    )
    assert settings == pb.MerchantSettings(dunning_final_action=pb.DUNNING_FINAL_ACTION_PAST_DUE)
    now = billing_clock.now()

    last = await dunned.fail(invoice, 1, reason=pb.PAYMENT_FAILURE_REASON_MANDATE_REVOKED)

    assert list(last.payment_attempts) == [
        attempt(1, now, reason=pb.PAYMENT_FAILURE_REASON_MANDATE_REVOKED)
    ]
    assert not last.HasField("next_payment_attempt_time")
    past_due = await dunned.subscription(subscription)
    assert past_due.status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    events = await dunned.events()
    assert [kind for kind, _ in events] == ["invoice.payment_failed", "subscription.updated"]
    assert events[0][1]["attempt"] == {
        "number": 1,
        "attemptTime": rfc3339(now),
        "reason": "PAYMENT_FAILURE_REASON_MANDATE_REVOKED",
        "detail": BALANCE_DETAIL,
        "nextAttemptTime": None,
    }
    # The schedule ended: no attempt comes after the last.
    assert await expect_error(dunned.fail(invoice, 2)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "attempt_number",
    )
    assert await dunned.invoice(invoice) == last


async def test_after_the_last_failure_a_subscription_is_canceled_when_the_merchant_says_so(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    now = billing_clock.now()
    settings = await dunned.set_final_action(pb.DUNNING_FINAL_ACTION_CANCEL)
    assert settings == pb.MerchantSettings(
        dunning_final_action=pb.DUNNING_FINAL_ACTION_CANCEL, update_time=to_timestamp(now)
    )
    assert (
        await dunned.merchant.stub.GetMerchantSettings(
            pb.GetMerchantSettingsRequest(), metadata=dunned.merchant.metadata
        )
        == settings
    )

    await dunned.fail(invoice, 1, next_attempt_time=now + HOUR)
    assert (await dunned.subscription(subscription)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    await dunned.forget_events()
    ended = billing_clock.now()
    last = await dunned.fail(invoice, 2, reason=pb.PAYMENT_FAILURE_REASON_CAP_EXCEEDED, detail="")

    assert list(last.payment_attempts) == [
        attempt(1, now, next_attempt_time=now + HOUR),
        attempt(2, ended, reason=pb.PAYMENT_FAILURE_REASON_CAP_EXCEEDED, detail=""),
    ]
    assert not last.HasField("next_payment_attempt_time")
    canceled = await dunned.subscription(subscription)
    assert (canceled.status, canceled.cancel_time) == (
        pb.SUBSCRIPTION_STATUS_CANCELED,
        to_timestamp(ended),
    )
    # Canceled as CancelSubscription cancels now: the partial period (no usage) billed once.
    invoices = await dunned.merchant.invoices(subscription)
    assert [(i.amount, i.status) for i in invoices] == [
        ("3.000000", pb.INVOICE_STATUS_OPEN),
        ("0.000000", pb.INVOICE_STATUS_PAID),
    ]
    final = invoices[1]
    assert (final.period_start, final.period_end) == (
        subscription.current_period_start,
        to_timestamp(ended),
    )
    assert await dunned.events() == [
        (
            "invoice.payment_failed",
            {
                "invoice": as_json(last),
                "attempt": as_json(last.payment_attempts[1]) | {"nextAttemptTime": None},
            },
        ),
        ("invoice.created", as_json(final)),
        ("invoice.finalized", as_json(final)),
        ("invoice.paid", as_json(final)),
        ("subscription.canceled", as_json(canceled)),
    ]


async def test_a_repeated_report_changes_nothing_whatever_the_invoice_became(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    now = billing_clock.now()
    first = await dunned.fail(invoice, 1, next_attempt_time=now + HOUR)
    past_due = await dunned.subscription(subscription)
    events = await dunned.events()

    again = await dunned.fail(
        invoice, 1, reason=pb.PAYMENT_FAILURE_REASON_REVERTED, detail="sent twice"
    )

    assert again == first
    assert await dunned.invoice(invoice) == first
    assert await dunned.subscription(subscription) == past_due
    assert await dunned.events() == events
    assert [kind for kind, _ in events] == ["invoice.payment_failed", "subscription.updated"]

    # Paid since: a late copy of the report still answers the invoice, as it is now.
    paid = await dunned.merchant.stub.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_dunned"),
        metadata=dunned.merchant.metadata,
    )
    assert await dunned.fail(invoice, 1, next_attempt_time=now + HOUR) == paid
    assert list(paid.payment_attempts) == list(first.payment_attempts)


@pytest.mark.parametrize("status", ["PAID", "VOID", "DRAFT", "UNCOLLECTIBLE"])
async def test_only_an_open_invoice_is_dunned_and_a_refusal_leaves_nothing(
    dunned: Dunned, billing_clock: ManualClock, status: str
) -> None:
    plan = await dunned.merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await dunned.merchant.subscribe(plan)
    invoice = await retempo_invoice(
        dunned.merchant,
        subscription_id=subscription.id,
        payment_plan_id=plan.id,
        amount="2",
        draft=status == "DRAFT",
    )
    md, stub = dunned.merchant.metadata, dunned.merchant.stub
    if status == "PAID":
        await stub.MarkInvoicePaid(
            pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_p"), metadata=md
        )
    elif status == "VOID":
        await stub.VoidInvoice(pb.VoidInvoiceRequest(id=invoice.id), metadata=md)
    elif status == "UNCOLLECTIBLE":
        await stub.MarkInvoiceUncollectible(
            pb.MarkInvoiceUncollectibleRequest(id=invoice.id), metadata=md
        )
    before = (await dunned.invoice(invoice), await dunned.subscription(subscription))
    await dunned.forget_events()

    assert await expect_error(
        dunned.fail(invoice, 1, next_attempt_time=billing_clock.now() + HOUR)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "invoice_id")
    assert await expect_error(dunned.fail(invoice, 1)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "invoice_id",
    )

    assert (await dunned.invoice(invoice), await dunned.subscription(subscription)) == before
    assert list(before[0].payment_attempts) == []
    assert before[1].status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert await dunned.events() == []
    count = await dunned.db.fetchval(
        "SELECT count(*) FROM invoicing.payment_attempts WHERE invoice_id = $1", invoice.id
    )
    assert count == 0


async def test_another_merchants_invoice_is_not_found_and_settings_are_per_merchant(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    before = (await dunned.invoice(invoice), await dunned.subscription(subscription))
    intruder = (("x-merchant-id", "mer_dunning_intruder"),)

    assert await expect_error(dunned.fail(invoice, 1, metadata=intruder)) == (
        grpc.StatusCode.NOT_FOUND,
        "invoice_id",
    )
    theirs = await dunned.merchant.stub.UpdateMerchantSettings(
        pb.UpdateMerchantSettingsRequest(
            settings=pb.MerchantSettings(dunning_final_action=pb.DUNNING_FINAL_ACTION_CANCEL)
        ),
        metadata=intruder,
    )

    assert theirs.dunning_final_action == pb.DUNNING_FINAL_ACTION_CANCEL
    assert (await dunned.invoice(invoice), await dunned.subscription(subscription)) == before
    assert await dunned.events() == []
    mine = await dunned.merchant.stub.GetMerchantSettings(
        pb.GetMerchantSettingsRequest(), metadata=dunned.merchant.metadata
    )
    assert mine == pb.MerchantSettings(dunning_final_action=pb.DUNNING_FINAL_ACTION_PAST_DUE)
    # So the owner's last failure leaves its subscription PAST_DUE.
    await dunned.fail(invoice, 1)
    assert (await dunned.subscription(subscription)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE


async def test_a_payment_after_failures_makes_the_invoice_paid_and_the_subscription_active(
    dunned: Dunned, billing_clock: ManualClock
) -> None:
    subscription, invoice = await dunned.open_invoice()
    other = await retempo_invoice(
        dunned.merchant,
        subscription_id=subscription.id,
        payment_plan_id=subscription.plan_id,
        amount="1",
    )
    now = billing_clock.now()
    await dunned.fail(invoice, 1, next_attempt_time=now + HOUR)
    await dunned.fail(invoice, 2, next_attempt_time=now + DAY)
    await dunned.fail(other, 1, next_attempt_time=now + HOUR)
    md, stub = dunned.merchant.metadata, dunned.merchant.stub

    paid = await stub.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_after_dunning"), metadata=md
    )

    assert (paid.status, paid.settlement_id) == (pb.INVOICE_STATUS_PAID, "stl_after_dunning")
    assert [a.number for a in paid.payment_attempts] == [1, 2]
    assert not paid.HasField("next_payment_attempt_time")
    # The other invoice is still being dunned: the subscription stays PAST_DUE.
    assert (await dunned.subscription(subscription)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE
    await dunned.forget_events()

    await stub.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(id=other.id, settlement_id="stl_other_dunned"), metadata=md
    )

    active = await dunned.subscription(subscription)
    assert active.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert [kind for kind, _ in await dunned.events()] == [
        "invoice.paid",
        "subscription.updated",
    ]
    assert (await dunned.events())[1] == ("subscription.updated", as_json(active))


async def test_a_report_names_its_invalid_field(dunned: Dunned) -> None:
    _, invoice = await dunned.open_invoice()
    md, stub = dunned.merchant.metadata, dunned.merchant.stub

    cases = [
        (dunned.fail(invoice, 1, reason=pb.PAYMENT_FAILURE_REASON_UNSPECIFIED), "reason"),
        (dunned.fail(invoice, 1, reason=pb.PaymentFailureReason.ValueType(99)), "reason"),
        (dunned.fail(invoice, 0), "attempt_number"),
        (dunned.fail(invoice, 101), "attempt_number"),
        (dunned.fail(invoice, 1, detail="x" * 1001), "detail"),
        (
            stub.UpdateMerchantSettings(pb.UpdateMerchantSettingsRequest(), metadata=md),
            "settings.dunning_final_action",
        ),
    ]
    for call, field in cases:
        assert await expect_error(call) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    assert list((await dunned.invoice(invoice)).payment_attempts) == []
    assert await dunned.events() == []
    # 1,000 characters of detail are kept whole.
    kept = await dunned.fail(invoice, 1, detail="x" * 1000)
    assert kept.payment_attempts[0].detail == "x" * 1000
