"""Free trials through invoicing's gRPC API, with real metering and PostgreSQL (issue 18): no
payment at checkout and no fee for the trial, its usage free or billed per plan, the periods
counted from its end, `subscription.trial_will_end` three days before, and a trial without a
mandate converted, canceled or paused per plan."""

from datetime import timedelta

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.domain.model import BillingInterval
from invoicing_svc.domain.periods import period_start
from service_kit.proto_time import to_timestamp
from tests.conftest import field_violation
from tests.invoicing.conftest import GRACE, Merchant, outbox_mark, webhook_events
from tests.invoicing.test_plan_changes import DAY, lines, moment, own_now, period_invoice, tokens

TRIAL = 14


async def trial_plan(merchant: Merchant, **fields: object) -> pb.Plan:
    """30 USDC a month and 0.001 a token, after a 14-day trial."""
    values: dict[str, object] = {
        "name": "Basic",
        "pricing_type": pb.PRICING_TYPE_HYBRID,
        "amount": "30",
        "charges": [
            pb.UsageCharge(event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price="0.001")
        ],
        "trial_days": TRIAL,
    }
    values.update(fields)
    return await merchant.plan(**values)


async def in_trial(merchant: Merchant, plan: pb.Plan) -> pb.Subscription:
    """Checked out with no payment, its test clock started."""
    session = await merchant.checkout(plan)
    assert session.amount_due == "0.000000"
    subscription = await merchant.subscribe(plan)
    return await merchant.advance(subscription, timedelta(seconds=1))


async def past_the_trial(merchant: Merchant, subscription: pb.Subscription) -> pb.Subscription:
    step = moment(subscription.trial_end) + GRACE - own_now(subscription) + timedelta(seconds=1)
    return await merchant.advance(subscription, step)


async def test_a_free_trial_bills_nothing_and_the_periods_start_at_its_end(
    merchant: Merchant,
) -> None:
    plan = await trial_plan(merchant)
    subscription = await in_trial(merchant, plan)
    start, end = moment(subscription.current_period_start), moment(subscription.trial_end)
    assert end == start + TRIAL * DAY == moment(subscription.current_period_end)
    await tokens(merchant, subscription, 1500, own_now(subscription))

    following = await past_the_trial(merchant, subscription)

    trial = await period_invoice(merchant, subscription)
    assert lines(trial) == [
        ("tokens: 1500 (per_unit)", "1.500000"),
        ("Free trial", "-1.500000"),
    ]
    assert (trial.amount, trial.status) == ("0.000000", pb.INVOICE_STATUS_PAID)
    assert following.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert moment(following.current_period_start) == end
    assert moment(following.current_period_end) == period_start(end, BillingInterval.MONTH, 1, 1)
    await tokens(merchant, following, 2000, own_now(following))
    step = moment(following.current_period_end) + GRACE - own_now(following)
    await merchant.advance(following, step + timedelta(seconds=1))
    assert lines(await period_invoice(merchant, following)) == [
        ("Basic: fixed fee", "30.000000"),
        ("tokens: 2000 (per_unit)", "2.000000"),
    ]


async def test_a_trial_whose_usage_is_billed_charges_it_without_a_fee(merchant: Merchant) -> None:
    plan = await trial_plan(merchant, trial_usage_billed=True)
    subscription = await in_trial(merchant, plan)
    await tokens(merchant, subscription, 1500, own_now(subscription))

    await past_the_trial(merchant, subscription)

    trial = await period_invoice(merchant, subscription)
    assert lines(trial) == [("tokens: 1500 (per_unit)", "1.500000")]
    assert trial.status == pb.INVOICE_STATUS_OPEN


async def test_trial_will_end_is_sent_once_three_days_before(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    subscription = await in_trial(merchant, await trial_plan(merchant))
    mark = await outbox_mark(db)

    early = await merchant.advance(subscription, (TRIAL - 3) * DAY - timedelta(minutes=1))
    assert [e["type"] for e in await webhook_events(db, merchant, mark)] == []
    reminded = await merchant.advance(early, timedelta(minutes=2))
    await merchant.advance(reminded, DAY)

    events = await webhook_events(db, merchant, mark)
    assert [e["type"] for e in events] == ["subscription.trial_will_end"]
    assert events[0]["data"]["trialEnd"] == subscription.trial_end.ToJsonString()


async def test_a_trial_shorter_than_three_days_is_reminded_at_once(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    mark = await outbox_mark(db)

    await in_trial(merchant, await trial_plan(merchant, trial_days=2))

    types = [e["type"] for e in await webhook_events(db, merchant, mark)]
    assert types.count("subscription.trial_will_end") == 1


async def test_a_trial_without_a_mandate_ends_per_plan(merchant: Merchant) -> None:
    canceled = await in_trial(
        merchant, await trial_plan(merchant, trial_end_action=pb.TRIAL_END_ACTION_CANCEL)
    )
    paused = await in_trial(
        merchant, await trial_plan(merchant, trial_end_action=pb.TRIAL_END_ACTION_PAUSE)
    )

    after_cancel = await past_the_trial(merchant, canceled)
    after_pause = await past_the_trial(merchant, paused)

    assert after_cancel.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert moment(after_cancel.cancel_time) == moment(canceled.trial_end)
    assert after_pause.status == pb.SUBSCRIPTION_STATUS_PAUSED
    assert moment(after_pause.pause_time) == moment(paused.trial_end)
    assert len(await merchant.invoices(canceled)) == len(await merchant.invoices(paused)) == 1
    resumed = await merchant.stub.ResumeSubscription(
        pb.ResumeSubscriptionRequest(id=paused.id), metadata=merchant.metadata
    )
    assert resumed.status == pb.SUBSCRIPTION_STATUS_ACTIVE


async def report_mandate(
    merchant: Merchant, subscription: pb.Subscription, change: "pb.MandateChange.ValueType"
) -> None:
    summary = pb.MandateSummary(
        mandate_id=f"mdt_{subscription.id[4:]}", subscription_id=subscription.id
    )
    summary.expire_time.CopyFrom(to_timestamp(moment(subscription.trial_end) + 365 * DAY))
    await merchant.stub.ReportMandateChange(
        pb.ReportMandateChangeRequest(change=change, mandate=summary), metadata=merchant.metadata
    )


async def test_a_trial_with_a_mandate_converts_and_a_revoked_one_does_not_count(
    merchant: Merchant,
) -> None:
    plan = await trial_plan(merchant, trial_end_action=pb.TRIAL_END_ACTION_CANCEL)
    kept = await in_trial(merchant, plan)
    revoked = await in_trial(merchant, plan)
    await report_mandate(merchant, kept, pb.MANDATE_CHANGE_CREATED)
    await report_mandate(merchant, revoked, pb.MANDATE_CHANGE_CREATED)
    await report_mandate(merchant, revoked, pb.MANDATE_CHANGE_REVOKED)

    assert (await past_the_trial(merchant, kept)).status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert (await past_the_trial(merchant, revoked)).status == pb.SUBSCRIPTION_STATUS_CANCELED


async def test_trial_terms_are_checked_and_a_trial_does_not_pause(merchant: Merchant) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases: list[dict[str, object]] = [
        {"trial_days": 731},
        {"trial_days": -1},
        {"trial_days": 0, "trial_usage_billed": True},
        {"trial_days": 0, "trial_end_action": pb.TRIAL_END_ACTION_PAUSE},
        {"trial_end_action": 7},
        {
            "pricing_type": pb.PRICING_TYPE_USAGE_BASED,
            "amount": "0.001",
            "charges": [],
            "prepaid_only": True,
        },
    ]
    for fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await trial_plan(merchant, **fields)
        assert caught.value.code() == invalid, fields
        assert field_violation(caught.value) in ("plan.trial_days", "plan.trial_end_action")
    subscription = await in_trial(merchant, await trial_plan(merchant))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.stub.PauseSubscription(
            pb.PauseSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "id",
    )
