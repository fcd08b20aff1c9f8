"""Hostile input to settlement: a precise status each time, and nothing stored. Settlement holds
no free text: hashes, addresses, ids and amounts only, so script and SQL are refused."""

from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from billing.settlement.v1 import settlement_pb2 as pb
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
from tests.settlement.conftest import Shop

SERVICE = pb.DESCRIPTOR.services_by_name["SettlementService"]
INVALID = grpc.StatusCode.INVALID_ARGUMENT
TRANSACTION = "0x" + "ab" * 32


@pytest.fixture
async def channel(platform: Platform) -> AsyncIterator[grpc.aio.Channel]:
    port = int(platform.addresses[2].rsplit(":", 1)[1])
    async with service_channel(port) as opened:
        yield opened


async def nothing_stored(db: asyncpg.Connection, shop: Shop) -> None:
    counts = await stored_rows(db, "settlement", shop.merchant.merchant_id)
    # The shop's payout wallet was registered before the hostile call.
    assert counts == {**dict.fromkeys(counts, 0), "payout_wallets": 1}, counts


def submission(shop: Shop, **fields: str) -> pb.SubmitSettlementRequest:
    values = {
        "invoice_id": "in_hostile",
        "reference_hash": "0x" + "5e" * 32,
        "transaction_hash": TRANSACTION,
        "payer_wallet_address": shop.payer,
        "merchant_wallet_address": shop.wallet,
    }
    values.update(fields)
    return pb.SubmitSettlementRequest(**values)


@pytest.mark.parametrize("payload", GARBAGE)
@pytest.mark.parametrize(
    "name", ["SubmitSettlement", "RecordInvoice", "BatchRecordInvoices", "GetBalance"]
)
async def test_malformed_bytes_are_invalid_argument(
    channel: grpc.aio.Channel, shop: Shop, db: asyncpg.Connection, name: str, payload: bytes
) -> None:
    error = await call_raw(channel, method(SERVICE, name), payload, shop.merchant.merchant_id)
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, shop)


async def test_invalid_utf8_in_a_string_is_invalid_argument(
    channel: grpc.aio.Channel, shop: Shop, db: asyncpg.Connection
) -> None:
    payload = invalid_utf8(submission(shop, invoice_id="not-utf8"), "not-utf8")
    error = await call_raw(
        channel, method(SERVICE, "SubmitSettlement"), payload, shop.merchant.merchant_id
    )
    assert error.code() == INVALID, error.details()
    await nothing_stored(db, shop)


async def test_a_message_over_32_mib_is_resource_exhausted(
    shop: Shop, db: asyncpg.Connection
) -> None:
    request = submission(shop, invoice_id="i" * OVERSIZED)
    call = shop.platform.stub.SubmitSettlement(request, metadata=shop.metadata)
    await refused(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
    await nothing_stored(db, shop)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"transaction_hash": "0x\x00" + "ab" * 31}, "transaction_hash"),
        ({"transaction_hash": "t" * TEN_MB}, "transaction_hash"),
        ({"reference_hash": "r" * TEN_MB}, "reference_hash"),
        ({"payer_wallet_address": "p" * TEN_MB}, "payer_wallet_address"),
        ({"merchant_wallet_address": SCRIPT}, "merchant_wallet_address"),
        ({"transaction_hash": SQL.format(table="settlement.settlements")}, "transaction_hash"),
        ({"invoice_id": "i" * TEN_MB}, "invoice_id"),
    ],
)
async def test_hostile_strings_are_invalid_argument_naming_the_field(
    shop: Shop, db: asyncpg.Connection, fields: dict[str, str], field: str
) -> None:
    call = shop.platform.stub.SubmitSettlement(submission(shop, **fields), metadata=shop.metadata)
    await refused(call, INVALID, field)
    await nothing_stored(db, shop)


@pytest.mark.parametrize("amount", BAD_DECIMALS)
async def test_hostile_invoice_amounts_are_invalid_argument(
    shop: Shop, db: asyncpg.Connection, amount: str
) -> None:
    request = pb.RecordInvoiceRequest(invoice_id="in_1", user_id="usr_1", amount=amount)
    await refused(
        shop.platform.stub.RecordInvoice(request, metadata=shop.metadata), INVALID, "amount"
    )
    await nothing_stored(db, shop)


@pytest.mark.parametrize("amount", BAD_DECIMALS)
async def test_a_hostile_amount_in_a_batch_names_its_position_and_records_nothing(
    shop: Shop, db: asyncpg.Connection, amount: str
) -> None:
    request = pb.BatchRecordInvoicesRequest(
        invoices=[
            pb.RecordInvoiceRequest(invoice_id="in_1", user_id="usr_1", amount="1"),
            pb.RecordInvoiceRequest(invoice_id="in_2", user_id="usr_1", amount=amount),
        ]
    )
    call = shop.platform.stub.BatchRecordInvoices(request, metadata=shop.metadata)
    await refused(call, INVALID, "invoices[1].amount")
    await nothing_stored(db, shop)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"invoice_id": "i" * TEN_MB}, "invoice_id"),
        ({"user_id": "u" * TEN_MB}, "user_id"),
        ({"user_id": "usr\x00"}, "user_id"),
    ],
)
async def test_hostile_ledger_references_are_invalid_argument(
    shop: Shop, db: asyncpg.Connection, fields: dict[str, str], field: str
) -> None:
    request = pb.RecordInvoiceRequest(invoice_id="in_1", user_id="usr_1", amount="1")
    for name, value in fields.items():
        setattr(request, name, value)
    call = shop.platform.stub.RecordInvoice(request, metadata=shop.metadata)
    await refused(call, INVALID, field)
    await nothing_stored(db, shop)


async def test_sql_in_a_user_id_is_an_account_name_taken_literally(
    shop: Shop, db: asyncpg.Connection
) -> None:
    user = SQL.format(table="settlement.journal_entries")
    request = pb.RecordInvoiceRequest(invoice_id="in_sql", user_id=user, amount="2")
    assert (await shop.platform.stub.RecordInvoice(request, metadata=shop.metadata)).transaction_id
    assert await shop.balance(f"receivable:{user}") == "2.000000"
    counts = await stored_rows(db, "settlement", shop.merchant.merchant_id)
    assert (counts["journal_transactions"], counts["journal_entries"]) == (1, 2)


async def test_an_exponent_is_posted_as_its_plain_value(shop: Shop) -> None:
    request = pb.RecordInvoiceRequest(invoice_id="in_exp", user_id="usr_exp", amount="1e5")
    assert (await shop.platform.stub.RecordInvoice(request, metadata=shop.metadata)).transaction_id
    assert await shop.balance("receivable:usr_exp") == "100000.000000"
    assert await shop.balance("revenue") == "-100000.000000"


@pytest.mark.parametrize("account", ["a" * TEN_MB, SQL.format(table="settlement.journal_entries")])
async def test_hostile_accounts_are_invalid_argument(shop: Shop, account: str) -> None:
    call = shop.platform.stub.GetBalance(
        pb.GetBalanceRequest(account=account), metadata=shop.metadata
    )
    await refused(call, INVALID, "account")
