"""Services, plans and checkout through gRPC: validation, pagination, completion rules."""

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant


async def test_services_and_plans_page_through_in_creation_order(merchant: Merchant) -> None:
    created = [await merchant.service(f"Service {i}") for i in range(5)]
    names: list[str] = []
    token = ""
    while True:
        page = await merchant.stub.ListServices(
            pb.ListServicesRequest(page_size=2, page_token=token), metadata=merchant.metadata
        )
        names += [s.name for s in page.services]
        token = page.next_page_token
        if not token:
            break
    assert names == [s.name for s in created]
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert fetched == plan
    assert (plan.amount, plan.currency, plan.interval_count) == ("0.00001", "USDC", 1)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"pricing_type": pb.PRICING_TYPE_FIXED_RECURRING}, "plan.amount"),
        ({"pricing_type": pb.PRICING_TYPE_USAGE_BASED}, "plan.amount"),
        ({"pricing_type": pb.PRICING_TYPE_HYBRID, "amount": "29"}, "plan.charges"),
        ({"pricing_type": pb.PRICING_TYPE_USAGE_BASED, "amount": "-1"}, "plan.amount"),
        ({"pricing_type": pb.PRICING_TYPE_USAGE_BASED, "amount": "0.0000000000001"}, "plan.amount"),
        ({"amount": "1"}, "plan.pricing_type"),
        (
            {"pricing_type": pb.PRICING_TYPE_USAGE_BASED, "amount": "1", "interval_count": 37},
            "plan.interval_count",
        ),
        (
            {
                "pricing_type": pb.PRICING_TYPE_USAGE_BASED,
                "charges": [
                    pb.UsageCharge(
                        event_key="tokens", model=pb.CHARGE_MODEL_PACKAGE, unit_price="0.04"
                    )
                ],
            },
            "plan.charges[0].package_size",
        ),
        (
            {
                "pricing_type": pb.PRICING_TYPE_USAGE_BASED,
                "charges": [
                    pb.UsageCharge(
                        event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price="1"
                    ),
                    pb.UsageCharge(
                        event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price="2"
                    ),
                ],
            },
            "plan.charges[1].event_key",
        ),
    ],
)
async def test_invalid_plans_are_rejected_with_the_field(
    merchant: Merchant, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.plan(**fields)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )


async def test_a_plan_of_an_unknown_service_is_not_found(merchant: Merchant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.plan(
            service_id="svc_missing", pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1"
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.NOT_FOUND,
        "plan.service_id",
    )


async def test_a_usage_only_checkout_completes_at_once(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    session = await merchant.checkout(plan)
    assert session.url == f"http://127.0.0.1:8080/checkout/{session.id}"
    assert (session.status, session.amount_due) == (pb.CHECKOUT_SESSION_STATUS_OPEN, "0.000000")

    done = await merchant.stub.CompleteCheckoutSession(
        pb.CompleteCheckoutSessionRequest(id=session.id), metadata=merchant.metadata
    )
    again = await merchant.stub.CompleteCheckoutSession(
        pb.CompleteCheckoutSessionRequest(id=session.id), metadata=merchant.metadata
    )

    assert done.status == pb.CHECKOUT_SESSION_STATUS_COMPLETE
    assert again == done
    subscription = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=done.subscription_id), metadata=merchant.metadata
    )
    assert (subscription.status, subscription.user_id, subscription.plan_id) == (
        pb.SUBSCRIPTION_STATUS_ACTIVE,
        "usr_b4e7f812",
        plan.id,
    )


async def test_a_checkout_with_a_fee_waits_for_the_payment_to_be_verified(
    merchant: Merchant,
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_FIXED_RECURRING, amount="9.99")
    session = await merchant.checkout(plan)
    md = merchant.metadata
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await merchant.stub.CompleteCheckoutSession(
            pb.CompleteCheckoutSessionRequest(id=session.id), metadata=md
        )
    assert (missing.value.code(), field_violation(missing.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "payment",
    )
    bad = pb.PaymentProof(transaction_hash="0x12", payer_wallet_address="0x" + "1" * 40)
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await merchant.stub.CompleteCheckoutSession(
            pb.CompleteCheckoutSessionRequest(id=session.id, payment=bad), metadata=md
        )
    assert field_violation(malformed.value) == "payment.transaction_hash"

    proof = pb.PaymentProof(
        transaction_hash="0x" + "ab" * 32, payer_wallet_address="0x" + "12" * 20
    )
    waiting = await merchant.stub.CompleteCheckoutSession(
        pb.CompleteCheckoutSessionRequest(id=session.id, payment=proof), metadata=md
    )
    assert (waiting.status, waiting.subscription_id) == (
        pb.CHECKOUT_SESSION_STATUS_AWAITING_PAYMENT,
        "",
    )
    confirmed = await merchant.stub.ConfirmCheckoutPayment(
        pb.ConfirmCheckoutPaymentRequest(id=session.id, settlement_id="stl_1"), metadata=md
    )
    assert confirmed.status == pb.CHECKOUT_SESSION_STATUS_COMPLETE
    assert confirmed.subscription_id.startswith("sub_")


async def test_a_new_subscriber_gets_an_id(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    session = await merchant.stub.CreateCheckoutSession(
        pb.CreateCheckoutSessionRequest(
            session=pb.CheckoutSession(
                plan_id=plan.id,
                new_subscriber=pb.NewSubscriber(email="ada@example.com", name="Ada"),
                success_url="https://m.example/ok",
                cancel_url="https://m.example/no",
            )
        ),
        metadata=merchant.metadata,
    )
    assert session.user_id.startswith("usr_")


@pytest.mark.parametrize(
    ("session", "field"),
    [
        (
            pb.CheckoutSession(
                plan_id="plan_x", success_url="https://a.example", cancel_url="https://b.example"
            ),
            "session.plan_id",
        ),
        (
            pb.CheckoutSession(
                plan_id="plan_x", success_url="javascript:alert(1)", cancel_url="https://b.example"
            ),
            "session.success_url",
        ),
        (
            pb.CheckoutSession(
                plan_id="", success_url="https://a.example", cancel_url="https://b.example"
            ),
            "session.plan_id",
        ),
    ],
)
async def test_invalid_checkouts_are_rejected(
    merchant: Merchant, session: pb.CheckoutSession, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.stub.CreateCheckoutSession(
            pb.CreateCheckoutSessionRequest(session=session), metadata=merchant.metadata
        )
    assert field_violation(caught.value) == field
