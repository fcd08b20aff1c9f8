"""The merchant's own ledger in settlement: balances, journal entries and the reconciliation
report (every call is scoped to the merchant's accounts, as every settlement call is)."""

from typing import Annotated, Any

from fastapi import Query
from pydantic import Field

from billing.settlement.v1 import settlement_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page

router = merchant_router("ledger")
Account = Annotated[str, Query(max_length=200)]
# What a merchant's books hold whatever its customers: the balances asked for by default.
OWN_ACCOUNTS = ["revenue", "usdc_received"]


@router.get("/ledger/balances", **r.documented(r.Page[r.Balance]))
async def list_balances(
    merchant: Merchant,
    account: Annotated[
        list[Annotated[str, Field(max_length=200)]], Query(min_length=1, max_length=20)
    ] = OWN_ACCOUNTS,
) -> Any:
    """The balance of each `account` asked for (repeat it; "revenue", "usdc_received",
    "receivable:<userId>", "credit:<userId>", "promotions", "top_ups"), by default revenue and
    usdc_received."""
    stub = merchant.gateway.backends.settlement
    balances = [
        to_json(await merchant.call(stub.GetBalance, pb.GetBalanceRequest(account=name)))
        for name in account
    ]
    return page(balances, "")


@router.get("/ledger/entries", **r.documented(r.Page[r.JournalEntry]))
async def list_entries(
    merchant: Merchant,
    account: Account = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    """Newest transaction first; `limit` counts transactions (each with all its entries)."""
    stub = merchant.gateway.backends.settlement
    request = pb.ListEntriesRequest(account=account, page_size=limit, page_token=starting_after)
    found = await merchant.call(stub.ListEntries, request)
    return page([to_json(e) for e in found.entries], found.next_page_token)


@router.get("/ledger/reconciliation", **r.documented(r.Reconciliation))
async def reconcile(merchant: Merchant) -> Any:
    """The ledger compared with the merchant's invoices and confirmed settlements: every
    difference found (there should be none)."""
    stub = merchant.gateway.backends.settlement
    return to_json(await merchant.call(stub.Reconcile, pb.ReconcileRequest()))
