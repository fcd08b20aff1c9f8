"""Hostile input to invoicing: a precise status each time, and nothing stored."""

import itertools
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.conftest import Platform, service_channel
from tests.hostile import (
    BAD_DECIMALS,
    GARBAGE,
    OVERSIZED,
    SCRIPT,
    SQL,
    TEN_MB,
    call_raw,
    invalid_utf8,
    method,
    refused,
    stored_rows,
)
from tests.invoicing.conftest import Merchant

SERVICE = pb.DESCRIPTOR.services_by_name["InvoicingService"]
INVALID = grpc.StatusCode.INVALID_ARGUMENT
_merchants = itertools.count(1)


@pytest.fixture
def merchant(platform: Platform) -> Merchant:
    return Merchant(
        platform.invoicing,
        platform.invoicing_stub,
        platform.metering_stub,
        f"mer_hostile_inv{next(_merchants)}",
    )


@pytest.fixture
async def channel(platform: Platform) -> AsyncIterator[grpc.aio.Channel]:
    port = int(platform.addresses[1].rsplit(":", 1)[1])
    async with service_channel(port) as opened:
        yield opened


async def nothing_stored(db: asyncpg.Connection, merchant: Merchant) -> None:
    counts = await stored_rows(db, "invoicing", merchant.merchant_id)
    assert counts == dict.fromkeys(counts, 0), counts


async def create_plan(merchant: Merchant, **fields: object) -> pb.Plan:
    """A plan of a new service of the merchant, with these fields."""
    service = await merchant.service()
    values: dict[str, object] = {
        "service_id": service.id,
        "name": "Pro",
        "pricing_type": pb.PRICING_TYPE_FIXED_RECURRING,
        "billing_interval": pb.BILLING_INTERVAL_MONTH,
        "amount": "1",
    }
    values.update(fields)
    return await merchant.stub.CreatePlan(
        pb.CreatePlanRequest(plan=pb.Plan(**values)),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )


@pytest.mark.parametrize("payload", GARBAGE)
@pytest.mark.parametrize(
    "name", ["CreateService", "CreatePlan", "CreateCheckoutSession", "CreateInvoice"]
)
async def test_malformed_bytes_are_invalid_argument(
    channel: grpc.aio.Channel,
    merchant: Merchant,
    db: asyncpg.Connection,
    name: str,
    payload: bytes,
) -> None:
    error = await call_raw(channel, method(SERVICE, name), payload, merchant.merchant_id)
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, merchant)


async def test_invalid_utf8_in_a_string_is_invalid_argument(
    channel: grpc.aio.Channel, merchant: Merchant, db: asyncpg.Connection
) -> None:
    request = pb.CreateServiceRequest(service=pb.Service(name="not-utf8"))
    payload = invalid_utf8(request, "not-utf8")
    error = await call_raw(channel, method(SERVICE, "CreateService"), payload, merchant.merchant_id)
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, merchant)


async def test_a_nul_character_is_invalid_argument_naming_the_field(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    call = merchant.stub.CreateService(
        pb.CreateServiceRequest(service=pb.Service(name="AI\x00API")), metadata=merchant.metadata
    )
    await refused(call, INVALID, "service.name")
    await nothing_stored(db, merchant)


async def test_a_message_over_32_mib_is_resource_exhausted(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    service = pb.Service(name="Big", description="d" * OVERSIZED)
    call = merchant.stub.CreateService(
        pb.CreateServiceRequest(service=service), metadata=merchant.metadata
    )
    await refused(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
    await nothing_stored(db, merchant)


@pytest.mark.parametrize("amount", BAD_DECIMALS)
async def test_hostile_plan_amounts_are_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection, amount: str
) -> None:
    await refused(create_plan(merchant, amount=amount), INVALID, "plan.amount")
    counts = await stored_rows(db, "invoicing", merchant.merchant_id)
    assert counts == {**dict.fromkeys(counts, 0), "services": 1}, counts


@pytest.mark.parametrize("price", BAD_DECIMALS)
async def test_hostile_unit_prices_are_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection, price: str
) -> None:
    charge = pb.UsageCharge(event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price=price)
    call = create_plan(
        merchant, pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="", charges=[charge]
    )
    await refused(call, INVALID, "plan.charges[0].unit_price")
    assert (await stored_rows(db, "invoicing", merchant.merchant_id))["plans"] == 0


@pytest.mark.parametrize("amount", BAD_DECIMALS)
async def test_hostile_invoice_amounts_are_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection, amount: str
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.00001")
    subscription = await merchant.subscribe(plan)
    call = merchant.stub.CreateInvoice(
        pb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount
        ),
        metadata=merchant.metadata,
    )
    await refused(call, INVALID, "amount")
    assert (await stored_rows(db, "invoicing", merchant.merchant_id))["invoices"] == 0


async def test_an_exponent_is_stored_as_its_plain_value(merchant: Merchant) -> None:
    plan = await create_plan(merchant, amount="1e5")
    fetched = await merchant.stub.GetPlan(pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata)
    assert (plan.amount, fetched.amount) == ("100000", "100000")


@pytest.mark.parametrize(
    ("request_of", "field"),
    [
        (
            lambda big: pb.CreateServiceRequest(service=pb.Service(name=big)),
            "service.name",
        ),
        (
            lambda big: pb.CreateServiceRequest(service=pb.Service(name="S", description=big)),
            "service.description",
        ),
        (
            lambda big: pb.CreateServiceRequest(service=pb.Service(name="S"), request_id=big),
            "request_id",
        ),
    ],
)
async def test_ten_megabyte_strings_are_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection, request_of: object, field: str
) -> None:
    request = request_of("x" * TEN_MB)  # type: ignore[operator]
    await refused(merchant.stub.CreateService(request, metadata=merchant.metadata), INVALID, field)
    await nothing_stored(db, merchant)


@pytest.mark.parametrize(
    ("session", "field"),
    [
        ({"user_id": "u" * TEN_MB}, "session.user_id"),
        ({"success_url": "https://m.example/" + "s" * TEN_MB}, "session.success_url"),
        ({"new_subscriber": pb.NewSubscriber(email="e" * TEN_MB)}, "session.new_subscriber"),
        ({"new_subscriber": pb.NewSubscriber(name="n" * TEN_MB)}, "session.new_subscriber"),
    ],
)
async def test_ten_megabyte_checkout_fields_are_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection, session: dict[str, object], field: str
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.00001")
    values: dict[str, object] = {
        "plan_id": plan.id,
        "user_id": "usr_1",
        "success_url": "https://m.example/ok",
        "cancel_url": "https://m.example/no",
    }
    values.update(session)
    call = merchant.stub.CreateCheckoutSession(
        pb.CreateCheckoutSessionRequest(session=pb.CheckoutSession(**values)),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )
    await refused(call, INVALID, field)
    counts = await stored_rows(db, "invoicing", merchant.merchant_id)
    assert (counts["checkout_sessions"], counts["subscribers"]) == (0, 0)


async def test_a_ten_megabyte_webhook_url_is_invalid_argument(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    endpoint = pb.WebhookEndpoint(url="https://m.example/" + "h" * TEN_MB, event_types=["*"])
    call = merchant.stub.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(endpoint=endpoint), metadata=merchant.metadata
    )
    await refused(call, INVALID, "endpoint.url")
    await nothing_stored(db, merchant)


async def test_sql_and_script_in_free_text_are_stored_literally(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    name, description = SQL.format(table="invoicing.services"), SCRIPT
    service = await merchant.stub.CreateService(
        pb.CreateServiceRequest(service=pb.Service(name=name, description=description)),
        metadata=merchant.metadata,
    )
    plan = await merchant.stub.CreatePlan(
        pb.CreatePlanRequest(
            plan=pb.Plan(
                service_id=service.id,
                name=SCRIPT,
                pricing_type=pb.PRICING_TYPE_FIXED_RECURRING,
                billing_interval=pb.BILLING_INTERVAL_MONTH,
                amount="1",
            )
        ),
        metadata=merchant.metadata,
    )

    fetched = await merchant.stub.GetService(
        pb.GetServiceRequest(id=service.id), metadata=merchant.metadata
    )
    assert (fetched.name, fetched.description) == (name, description)
    got_plan = await merchant.stub.GetPlan(
        pb.GetPlanRequest(id=plan.id), metadata=merchant.metadata
    )
    assert got_plan.name == SCRIPT
    counts = await stored_rows(db, "invoicing", merchant.merchant_id)
    assert (counts["services"], counts["plans"]) == (1, 1)
