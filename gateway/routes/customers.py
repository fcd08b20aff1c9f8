"""Customers: the merchant's subscribers (email, name, the wallet they paid from), and what an email
has access to (Revnu's `GET /api/v1/access?email=`)."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page

router = merchant_router("customers")
Email = Annotated[str, Query(max_length=320)]


@router.get("/customers", **r.documented(r.Page[r.Customer]))
async def list_customers(
    merchant: Merchant, email: Email = "", limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    """Oldest first; `email` (compared without case) keeps those who gave it at checkout."""
    stub = merchant.gateway.backends.invoicing
    request = pb.ListCustomersRequest(email=email, page_size=limit, page_token=starting_after)
    found = await merchant.call(stub.ListCustomers, request)
    return page([to_json(c) for c in found.customers], found.next_page_token)


@router.get("/customers/{customer_id}", **r.documented(r.Customer, 404))
async def get_customer(merchant: Merchant, customer_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(await merchant.call(stub.GetCustomer, pb.GetCustomerRequest(id=customer_id)))


@router.get("/access", **r.documented(r.CustomerAccess))
async def get_access(merchant: Merchant, email: Annotated[Email, Query(min_length=1)]) -> Any:
    """Whether a customer with this email has an ACTIVE subscription now, with the customers
    and those subscriptions."""
    stub = merchant.gateway.backends.invoicing
    access = await merchant.call(stub.GetCustomerAccess, pb.GetCustomerAccessRequest(email=email))
    return to_json(access)
