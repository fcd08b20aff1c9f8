"""What can be paid: an OPEN invoice, or a checkout session that has not been paid yet."""

from service_kit.errors import FailedPrecondition, InvalidArgument
from settlement_svc.domain import formats
from settlement_svc.domain.model import CheckoutStatus, InvoiceStatus, Payable
from settlement_svc.service_layer.unit_of_work import Settlements


def one_payable(invoice_id: str, checkout_session_id: str) -> None:
    """Exactly one of the two ids, each in its format."""
    if bool(invoice_id) == bool(checkout_session_id):
        raise InvalidArgument(
            "exactly one of invoice_id and checkout_session_id is required", field="invoice_id"
        )
    if invoice_id:
        formats.reference(invoice_id, "invoice_id")
    else:
        formats.reference(checkout_session_id, "checkout_session_id")


async def open_payable(
    settlements: Settlements, merchant_id: str, invoice_id: str, checkout_session_id: str
) -> Payable:
    """The invoice or checkout session as invoicing has it; FAILED_PRECONDITION when there is
    nothing to pay."""
    if invoice_id:
        payable = await settlements.invoicing.invoice(merchant_id, invoice_id)
        if payable.status is not InvoiceStatus.OPEN:
            raise FailedPrecondition(
                f"invoice {invoice_id} is {payable.status}, not OPEN", field="invoice_id"
            )
        return payable
    payable = await settlements.invoicing.checkout(merchant_id, checkout_session_id)
    if payable.status not in (CheckoutStatus.OPEN, CheckoutStatus.AWAITING_PAYMENT):
        raise FailedPrecondition(
            f"checkout session {checkout_session_id} is {payable.status}: nothing to pay",
            field="checkout_session_id",
        )
    return payable
