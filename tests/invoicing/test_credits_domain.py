"""What prepaid credits do to an invoice, and the key that spends them once per invoice."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from invoicing_svc.domain.credits import credit_key, takes_credits, with_credits
from invoicing_svc.domain.model import Invoice, InvoiceLine, InvoiceStatus

FINALIZED = datetime(2026, 12, 26, 10, 30, tzinfo=UTC)

OPEN = Invoice(
    id="in_01",
    merchant_id="mer_1",
    subscription_id="sub_1",
    service_id="svc_1",
    user_id="usr_1",
    plan_id="plan_1",
    status=InvoiceStatus.OPEN,
    period_start=datetime(2026, 11, 26, 10, 30, tzinfo=UTC),
    period_end=FINALIZED,
    amount=Decimal("0.500000"),
    create_time=FINALIZED,
    lines=(InvoiceLine("token_generated", "token_generated", Decimal(50000), Decimal("0.5")),),
    finalize_time=FINALIZED,
    due_time=FINALIZED + timedelta(days=30),
)


def test_credits_paying_part_leave_the_invoice_open_with_a_line() -> None:
    credited = with_credits(OPEN, Decimal("0.200000"))

    assert (credited.status, credited.amount, credited.credits_applied) == (
        InvoiceStatus.OPEN,
        Decimal("0.300000"),
        Decimal("0.200000"),
    )
    assert credited.lines[-1] == InvoiceLine("Credits applied", "", Decimal(1), Decimal("-0.2"))
    assert sum(line.amount for line in credited.lines) == credited.amount
    assert credited.paid_time is None


def test_credits_paying_all_make_it_paid_as_it_is_finalized() -> None:
    credited = with_credits(OPEN, Decimal("0.5"))

    assert (credited.status, credited.amount, credited.paid_time) == (
        InvoiceStatus.PAID,
        Decimal(0),
        FINALIZED,
    )
    assert credited.settlement_id == ""


def test_no_credits_change_nothing_and_more_than_owed_is_refused() -> None:
    assert with_credits(OPEN, Decimal(0)) is OPEN
    with pytest.raises(ValueError):
        with_credits(OPEN, Decimal("0.500001"))


def test_only_an_owed_invoice_takes_credits() -> None:
    assert takes_credits(OPEN)
    assert not takes_credits(replace(OPEN, status=InvoiceStatus.DRAFT))
    assert not takes_credits(replace(OPEN, status=InvoiceStatus.PAID, amount=Decimal(0)))
    assert not takes_credits(replace(OPEN, amount=Decimal(0)))


def test_the_key_is_the_period_else_the_request_else_the_invoice() -> None:
    # The same instant in another zone is the same period.
    elsewhere = OPEN.period_start.astimezone(timezone(timedelta(hours=2)))  # type: ignore[union-attr]
    assert credit_key(OPEN) == "sub_1:2026-11-26T10:30:00+00:00"
    assert credit_key(replace(OPEN, period_start=elsewhere)) == credit_key(OPEN)
    merchants = replace(OPEN, period_start=None, period_end=None)
    assert credit_key(merchants) == "in_01"
    keyed = credit_key(merchants, "req-7")
    assert keyed.startswith("sub_1:request:") and len(keyed) == len("sub_1:request:") + 64
    assert credit_key(merchants, "req-7") == keyed != credit_key(merchants, "req-8")
