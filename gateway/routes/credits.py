"""Prepaid credits of a customer: the merchant's grants, the balance they hold, and its history
in the ledger (settlement owns all three; the customer comes from invoicing's records, so a
customer the merchant does not have is 404 rather than an empty balance)."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as invoicing_pb
from billing.settlement.v1 import settlement_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.context import MerchantRequest
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import CreditGrantCreate, text
from service_kit.proto_time import to_timestamp

router = merchant_router("credits")


async def _require_customer(merchant: MerchantRequest, customer_id: str) -> None:
    """404 (param id) unless the merchant has this customer."""
    stub = merchant.gateway.backends.invoicing
    await merchant.call(stub.GetCustomer, invoicing_pb.GetCustomerRequest(id=customer_id))


@router.post(
    "/customers/{customer_id}/credit-grants",
    **r.documented(r.CreditGrant, 404, 409, status=201),
)
async def create_credit_grant(
    merchant: Merchant, customer_id: str, payload: CreditGrantCreate
) -> Any:
    """Promotional credits for the customer: `amount` (USDC, at most 6 decimals), `priority`
    (0-1000, lower spent first, default 0), `expireTime` (in the future; what is left then is
    written off; never by default), `description`."""

    async def create() -> dict[str, Any]:
        await _require_customer(merchant, customer_id)
        request = pb.CreateCreditGrantRequest(
            user_id=customer_id,
            amount=text(payload.amount),
            priority=payload.priority,
            description=payload.description,
            request_id=merchant.request_id(),
        )
        if payload.expire_time is not None:
            request.expire_time.CopyFrom(to_timestamp(payload.expire_time))
        stub = merchant.gateway.backends.settlement
        return to_json(await merchant.call(stub.CreateCreditGrant, request))

    return await merchant.created(create, status=201)


@router.get("/customers/{customer_id}/credit-grants", **r.documented(r.Page[r.CreditGrant], 404))
async def list_credit_grants(
    merchant: Merchant, customer_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    """Newest first: spendable, spent and expired grants."""
    await _require_customer(merchant, customer_id)
    stub = merchant.gateway.backends.settlement
    request = pb.ListCreditGrantsRequest(
        user_id=customer_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListCreditGrants, request)
    return page([to_json(g) for g in found.credit_grants], found.next_page_token)


@router.get("/customers/{customer_id}/credit-balance", **r.documented(r.CreditBalance, 404))
async def get_credit_balance(merchant: Merchant, customer_id: str) -> Any:
    """What the customer's live grants hold now: its next invoices fall by up to this much."""
    await _require_customer(merchant, customer_id)
    stub = merchant.gateway.backends.settlement
    request = pb.GetCreditBalanceRequest(user_id=customer_id)
    return to_json(await merchant.call(stub.GetCreditBalance, request))


@router.get("/customers/{customer_id}/credit-history", **r.documented(r.Page[r.JournalEntry], 404))
async def list_credit_history(
    merchant: Merchant, customer_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    """The ledger entries of the account credit:<customerId>, newest transaction first (grants,
    credits applied to invoices, given back, expired); `limit` counts transactions."""
    await _require_customer(merchant, customer_id)
    stub = merchant.gateway.backends.settlement
    request = pb.ListEntriesRequest(
        account=f"credit:{customer_id}", page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListEntries, request)
    return page([to_json(e) for e in found.entries], found.next_page_token)
