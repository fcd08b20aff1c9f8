"""Prepaid credits in settlement: grants, spending them on invoices once per key, giving back,
expiry, the payments' credits, the ledger and the balance reports to invoicing."""

import asyncio
import json
from datetime import timedelta

import asyncpg
import grpc
import pytest

from billing.settlement.v1 import settlement_pb2 as pb
from service_kit.grpc_errors import field_of
from service_kit.proto_time import to_timestamp
from settlement_svc.service_layer.prepaid_credits import expire_grants
from tests.settlement.conftest import Shop


async def grant(shop: Shop, user_id: str, amount: str, **fields: object) -> pb.CreditGrant:
    request = pb.CreateCreditGrantRequest(user_id=user_id, amount=amount, **fields)  # type: ignore[arg-type]
    return await shop.platform.stub.CreateCreditGrant(request, metadata=shop.metadata)


async def credit_balance(shop: Shop, user_id: str) -> pb.CreditBalance:
    return await shop.platform.stub.GetCreditBalance(
        pb.GetCreditBalanceRequest(user_id=user_id), metadata=shop.metadata
    )


async def apply(shop: Shop, *applications: tuple[str, str, str, str]) -> list[str]:
    answer = await shop.platform.stub.ApplyCredits(
        pb.ApplyCreditsRequest(
            applications=[
                pb.CreditApplication(key=k, invoice_id=i, user_id=u, amount=a)
                for k, i, u, a in applications
            ]
        ),
        metadata=shop.metadata,
    )
    return list(answer.applied)


async def remaining(shop: Shop, user_id: str) -> dict[str, str]:
    found = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=user_id), metadata=shop.metadata
    )
    return {g.description: g.remaining for g in found.credit_grants}


async def reconciled(shop: Shop) -> list[tuple[str, str, str, str]]:
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    return [(d.kind, d.reference, d.expected, d.actual) for d in report.differences]


async def test_a_grant_is_a_balance_held_in_the_ledger(shop: Shop) -> None:
    expiry = shop.platform.clock.now() + timedelta(days=30)
    created = await grant(
        shop,
        "usr_grant",
        "2.5",
        priority=5,
        expire_time=to_timestamp(expiry),
        description="Launch promotion",
        request_id="grant-1",
    )
    assert created.id.startswith("crg_")
    assert (created.user_id, created.amount, created.remaining, created.priority) == (
        "usr_grant",
        "2.500000",
        "2.500000",
        5,
    )
    assert (created.source, created.status) == (
        pb.CREDIT_SOURCE_PROMOTIONAL,
        pb.CREDIT_GRANT_STATUS_ACTIVE,
    )
    assert created.expire_time.ToDatetime().replace(tzinfo=expiry.tzinfo) == expiry
    again = await grant(shop, "usr_grant", "2.5", request_id="grant-1")
    assert again.id == created.id
    found = await credit_balance(shop, "usr_grant")
    assert (found.balance, found.expiring, found.currency) == ("2.500000", "2.500000", "USDC")
    assert found.next_expire_time == created.expire_time
    assert await shop.balance("credit:usr_grant") == "-2.500000"
    assert await shop.balance("promotions") == "2.500000"
    entries = await shop.platform.stub.ListEntries(
        pb.ListEntriesRequest(account="credit:usr_grant"), metadata=shop.metadata
    )
    assert [(e.kind, e.reference, e.credit) for e in entries.entries] == [
        ("credit_grant", created.id, "2.500000")
    ]
    assert await reconciled(shop) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.0000001"}, "amount"),
        ({"amount": "1e15"}, "amount"),
        ({"amount": "1", "priority": 1001}, "priority"),
        ({"amount": "1", "description": "x" * 501}, "description"),
        ({"amount": "1", "user_id": ""}, "user_id"),
    ],
)
async def test_a_grant_it_cannot_make_is_refused_and_stores_nothing(
    shop: Shop, fields: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"user_id": "usr_refused", **fields}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await shop.platform.stub.CreateCreditGrant(
            pb.CreateCreditGrantRequest(**values),  # type: ignore[arg-type]
            metadata=shop.metadata,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(refused.value) == field
    assert (await credit_balance(shop, "usr_refused")).balance == "0.000000"
    assert await shop.balance("promotions") == "0.000000"


async def test_a_grant_that_expired_already_is_refused(shop: Shop) -> None:
    past = to_timestamp(shop.platform.clock.now() - timedelta(seconds=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await grant(shop, "usr_late", "1", expire_time=past)
    assert (refused.value.code(), field_of(refused.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "expire_time",
    )


async def test_credits_are_spent_by_priority_then_expiry_once_per_key(shop: Shop) -> None:
    now = shop.platform.clock.now()
    user = "usr_spend"
    await grant(shop, user, "1", priority=10, description="late")
    await grant(
        shop, user, "0.5", expire_time=to_timestamp(now + timedelta(days=10)), description="ten"
    )
    await grant(
        shop, user, "0.7", expire_time=to_timestamp(now + timedelta(days=5)), description="five"
    )
    # Priority 0 first, the sooner expiry of the two first, then priority 10.
    assert await apply(shop, ("sub_1:p1", "in_one", user, "1.5")) == ["1.500000"]
    assert await remaining(shop, user) == {
        "late": "0.700000",
        "ten": "0.000000",
        "five": "0.000000",
    }
    # The same key again (a finalization retried): what it spent, nothing more.
    assert await apply(shop, ("sub_1:p1", "in_one_again", user, "1.5")) == ["1.500000"]
    assert (await credit_balance(shop, user)).balance == "0.700000"
    # ... retried for less: the difference goes back, to the grant spent last first.
    assert await apply(shop, ("sub_1:p1", "in_one_again", user, "1.0")) == ["1.000000"]
    assert await remaining(shop, user) == {
        "late": "1.000000",
        "ten": "0.200000",
        "five": "0.000000",
    }
    # A second invoice takes what is left; a third finds nothing.
    assert await apply(
        shop, ("sub_1:p2", "in_two", user, "5"), ("sub_1:p3", "in_three", user, "1")
    ) == ["1.200000", "0.000000"]
    assert (await credit_balance(shop, user)).balance == "0.000000"
    assert await shop.balance(f"credit:{user}") == "0.000000"
    # Granted 2.2 (promotions), spent 1.0 + 1.2 (revenue).
    assert await shop.balance("promotions") == "2.200000"
    assert await shop.balance("revenue") == "-2.200000"
    assert await reconciled(shop) == []


async def test_a_voided_invoice_gives_back_the_credits_it_spent(shop: Shop) -> None:
    user = "usr_void"
    await grant(shop, user, "3", description="welcome")
    assert await apply(shop, ("in_void", "in_void", user, "2")) == ["2.000000"]
    record = pb.RecordInvoiceRequest(invoice_id="in_void", user_id=user, amount="0")
    await shop.platform.stub.RecordInvoice(record, metadata=shop.metadata)
    assert (await credit_balance(shop, user)).balance == "1.000000"
    record.voided = True
    await shop.platform.stub.RecordInvoice(record, metadata=shop.metadata)
    await shop.platform.stub.RecordInvoice(record, metadata=shop.metadata)
    assert (await credit_balance(shop, user)).balance == "3.000000"
    assert await remaining(shop, user) == {"welcome": "3.000000"}
    assert await shop.balance("revenue") == "0.000000"
    assert await reconciled(shop) == []


async def test_concurrent_invoices_never_spend_a_credit_twice(shop: Shop) -> None:
    user = "usr_race"
    await grant(shop, user, "1")
    answers = await asyncio.gather(
        *(apply(shop, (f"race:{n}", f"in_race{n}", user, "0.3")) for n in range(8))
    )
    spent = sorted(a for (a,) in answers)
    assert spent == ["0.000000"] * 4 + ["0.100000"] + ["0.300000"] * 3
    assert (await credit_balance(shop, user)).balance == "0.000000"
    assert await reconciled(shop) == []


async def test_an_expired_grant_is_written_off(shop: Shop) -> None:
    user = "usr_expiry"
    clock = shop.platform.clock
    soon = await grant(
        shop, user, "0.4", expire_time=to_timestamp(clock.now() + timedelta(seconds=1))
    )
    await grant(shop, user, "0.6", description="kept")
    assert await apply(shop, ("exp:1", "in_exp", user, "0.1")) == ["0.100000"]
    clock.advance(timedelta(seconds=2))
    assert await expire_grants(shop.platform.settlements) >= 1
    assert await expire_grants(shop.platform.settlements) == 0
    found = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=user), metadata=shop.metadata
    )
    by_id = {g.id: g for g in found.credit_grants}
    assert (by_id[soon.id].status, by_id[soon.id].remaining) == (
        pb.CREDIT_GRANT_STATUS_EXPIRED,
        "0.000000",
    )
    assert (await credit_balance(shop, user)).balance == "0.600000"
    # Granted 1.0, 0.1 spent (from the one expiring first), 0.3 written off.
    assert await shop.balance("promotions") == "0.700000"
    assert await shop.balance(f"credit:{user}") == "-0.600000"
    assert await reconciled(shop) == []


async def test_what_a_payment_left_beyond_the_invoice_is_a_credit(
    shop: Shop, db: asyncpg.Connection
) -> None:
    invoice = await shop.open_invoice("0.5")
    settlement = await shop.submit(invoice.id, await shop.pay(700_000))
    await shop.settle()
    found = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=invoice.user_id), metadata=shop.metadata
    )
    ((credit,),) = [found.credit_grants]
    assert (credit.source, credit.amount, credit.reference, credit.priority) == (
        pb.CREDIT_SOURCE_PAYMENT,
        "0.200000",
        settlement.id,
        0,
    )
    assert not credit.HasField("expire_time")
    assert (await credit_balance(shop, invoice.user_id)).balance == "0.200000"
    # Invoicing is told each change of the balance, with a version that counts them.
    reports = await db.fetch(
        "SELECT payload FROM settlement.outbox WHERE merchant_id = $1"
        " AND topic = 'invoicing.credit_balance' ORDER BY id",
        shop.merchant.merchant_id,
    )
    assert [json.loads(r["payload"]) for r in reports] == [
        {"user_id": invoice.user_id, "balance": "0.200000", "version": 1}
    ]
    assert await reconciled(shop) == []
