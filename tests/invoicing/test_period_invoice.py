"""The invoice of a period (pure): the fixed fee pro-rated to a cancellation or left out when
paid up front, usage priced per line, a zero invoice paid at once, one beyond the bound held."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from invoicing_svc.domain.invoice_lines import PartUsage
from invoicing_svc.domain.model import (
    BillingInterval,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Plan,
    PricingType,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.period_invoice import period_invoice
from pricing.charges import PricingModel, UsageCharge

D = Decimal
START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 31, tzinfo=UTC)
NOW = datetime(2025, 3, 11, 12, tzinfo=UTC)
TERMS = timedelta(days=7)
PLAN = Plan(
    id="plan_1",
    merchant_id="m_1",
    service_id="svc_1",
    name="Pro",
    pricing_type=PricingType.HYBRID,
    billing_interval=BillingInterval.MONTH,
    interval_count=1,
    amount=D("30.000000"),
    charges=(UsageCharge("tokens", PricingModel.PER_UNIT, unit_price=D("0.001")),),
    create_time=START,
)
SUBSCRIPTION = Subscription(
    id="sub_1",
    merchant_id="m_1",
    service_id="svc_1",
    plan_id="plan_1",
    user_id="u_1",
    status=SubscriptionStatus.ACTIVE,
    billing_anchor=START,
    period_index=0,
    current_period_start=START,
    current_period_end=END,
    cancel_at_period_end=False,
    fee_prepaid_until=None,
    version=1,
    create_time=START,
)


def _invoice(subscription: Subscription, usage: dict[str, Decimal], until: datetime) -> Invoice:
    parts = [PartUsage(PLAN, PLAN, START, END, usage)]
    return period_invoice(
        subscription, parts, until=until, invoice_id="in_1", now=NOW, payment_terms=TERMS
    )


def test_a_canceled_period_pro_rates_the_fee_to_its_started_days() -> None:
    invoice = _invoice(SUBSCRIPTION, {"tokens": D(1500)}, until=NOW)
    assert invoice.lines == (
        InvoiceLine("Pro: fixed fee x 11/30 of the period", "", D(1), D("11.000000")),
        InvoiceLine("tokens: 1500 (per_unit)", "tokens", D(1500), D("1.500000")),
    )
    assert (invoice.id, invoice.status, invoice.amount) == ("in_1", InvoiceStatus.OPEN, D("12.5"))
    assert (invoice.period_start, invoice.period_end) == (START, NOW)
    assert (invoice.create_time, invoice.finalize_time, invoice.due_time) == (NOW, NOW, NOW + TERMS)
    assert invoice.paid_time is None and invoice.hold_reason == ""


def test_a_fee_paid_up_front_and_no_usage_is_a_zero_invoice_paid_as_issued() -> None:
    prepaid = replace(SUBSCRIPTION, fee_prepaid_until=END)
    invoice = _invoice(prepaid, {}, until=END)
    assert invoice.lines == (InvoiceLine("tokens: 0 (per_unit)", "tokens", D(0), D("0.000000")),)
    assert (invoice.status, invoice.amount, invoice.paid_time) == (
        InvoiceStatus.PAID,
        D("0.000000"),
        NOW,
    )


def test_usage_priced_at_the_bound_of_money_is_held_as_a_draft() -> None:
    invoice = _invoice(SUBSCRIPTION, {"tokens": D(10) ** 18}, until=END)
    assert (invoice.status, invoice.amount, invoice.lines) == (InvoiceStatus.DRAFT, D(0), ())
    assert (invoice.finalize_time, invoice.due_time, invoice.paid_time) == (None, None, None)
    assert invoice.hold_reason.startswith("the line 'tokens: 1000000000000000000 (per_unit)'")
