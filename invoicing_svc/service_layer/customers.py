"""Reading customers, and what a customer's email gives access to."""

from invoicing_svc.domain.customers import Customer, CustomerAccess, gives_access
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit import pagination
from service_kit.errors import InvalidArgument, NotFound
from service_kit.identifiers import require_identifier

MAX_EMAIL = 320
# Customers sharing one email an access answer covers (and MAX_PAGE_SIZE subscriptions each).
MAX_PER_EMAIL = 100


def _require_email(email: str) -> None:
    if not email or len(email) > MAX_EMAIL:
        raise InvalidArgument(f"email is required, at most {MAX_EMAIL} characters", field="email")


async def get_customer(invoicing: Invoicing, merchant_id: str, customer_id: str) -> Customer:
    require_identifier(customer_id, "id")
    async with invoicing.unit_of_work() as uow:
        found = await uow.customers.customer(merchant_id, customer_id)
    if found is None:
        raise NotFound(f"customer {customer_id} not found", field="id")
    return found


async def list_customers(
    invoicing: Invoicing, merchant_id: str, email: str, size: int, token: str
) -> tuple[list[Customer], str]:
    """The merchant's customers, oldest first; with an email, only those who gave it."""
    if email:
        _require_email(email)
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.customers.customers(
            merchant_id, email or None, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda c: (c.create_time, c.id))


async def customer_access(invoicing: Invoicing, merchant_id: str, email: str) -> CustomerAccess:
    """The customers with this email and their subscriptions that give access now."""
    _require_email(email)
    async with invoicing.unit_of_work() as uow:
        customers = await uow.customers.customers(merchant_id, email, None, MAX_PER_EMAIL)
        subscriptions = [
            subscription
            for customer in customers
            for subscription in await uow.subscriptions.subscriptions(
                merchant_id,
                service_id=None,
                user_id=customer.id,
                after=None,
                limit=pagination.MAX_PAGE_SIZE,
            )
        ]
    return CustomerAccess(
        customers=tuple(customers),
        subscriptions=tuple(
            sorted(filter(gives_access, subscriptions), key=lambda s: (s.create_time, s.id))
        ),
    )
