"""The spending rules of prepaid credits against an oracle: random grants, applications and
give-backs, to the base unit."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement_svc.domain.credit_grants import (
    CreditGrant,
    CreditSource,
    Use,
    balance,
    give_back,
    spend,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
UNIT = Decimal("0.000001")


def grant(number: int, units: int, priority: int, expires_in: int | None) -> CreditGrant:
    return CreditGrant(
        id=f"crg_{number:03d}",
        merchant_id="mer_1",
        user_id="usr_1",
        source=CreditSource.PROMOTIONAL,
        amount=units * UNIT,
        remaining=units * UNIT,
        priority=priority,
        # Negative: expired already; None: never expires.
        expire_time=None if expires_in is None else NOW + timedelta(days=expires_in),
        description="",
        reference="",
        create_time=NOW - timedelta(minutes=number),
    )


grants = st.lists(
    st.tuples(
        st.integers(1, 5_000_000),
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(-3, 30)),
    ),
    max_size=8,
).map(lambda specs: [grant(n, *spec) for n, spec in enumerate(specs)])


def oracle_order(pool: list[CreditGrant]) -> list[str]:
    """The rule in words: live grants only; the lowest priority number first; among equals the
    one that expires first, those that never expire last; then the oldest."""
    live = [g for g in pool if g.remaining > 0 and (g.expire_time is None or g.expire_time > NOW)]
    far = datetime.max.replace(tzinfo=UTC)
    live.sort(key=lambda g: (g.priority, g.expire_time or far, g.create_time))
    return [g.id for g in live]


@settings(max_examples=300, deadline=None)
@given(grants, st.integers(1, 20_000_000))
def test_spending_takes_the_grants_in_order_and_never_more_than_they_hold(
    pool: list[CreditGrant], units: int
) -> None:
    amount = units * UNIT
    uses = spend(pool, amount, NOW)
    available = sum((g.remaining for g in pool if g.id in oracle_order(pool)), Decimal(0))
    assert sum((u.amount for u in uses), Decimal(0)) == min(amount, available)
    # Grants are emptied in the oracle's order: every grant before the last one used is spent
    # whole.
    order = oracle_order(pool)
    assert [u.grant_id for u in uses] == order[: len(uses)]
    held = {g.id: g.remaining for g in pool}
    for use in uses[:-1]:
        assert use.amount == held[use.grant_id]
    assert all(0 < u.amount <= held[u.grant_id] for u in uses)
    found = balance(pool, NOW)
    assert found.balance == available


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 1_000_000), min_size=1, max_size=6),
    st.data(),
)
def test_giving_back_returns_to_the_grants_spent_last_first(
    spent_units: list[int], data: st.DataObject
) -> None:
    spent = [Use(f"crg_{n}", units * UNIT) for n, units in enumerate(spent_units)]
    back_units = data.draw(st.integers(0, sum(spent_units)))
    returned = give_back(spent, back_units * UNIT)
    assert sum((u.amount for u in returned), Decimal(0)) == back_units * UNIT
    # Oracle: walk the uses from the last, returning each whole until the amount runs out.
    expected, left = [], back_units
    for n in reversed(range(len(spent_units))):
        if left == 0:
            break
        taken = min(spent_units[n], left)
        expected.append(Use(f"crg_{n}", taken * UNIT))
        left -= taken
    assert returned == expected


def test_giving_back_more_than_was_spent_is_a_bug() -> None:
    with pytest.raises(ValueError, match="more than the application spent"):
        give_back([Use("crg_1", Decimal("0.5"))], Decimal("0.500001"))


def test_the_balance_counts_what_expires_and_when() -> None:
    pool = [grant(1, 1_000_000, 0, 5), grant(2, 500_000, 0, None), grant(3, 250_000, 0, -1)]
    found = balance(pool, NOW)
    assert (found.balance, found.expiring) == (Decimal("1.500000"), Decimal("1.000000"))
    assert found.next_expire_time == NOW + timedelta(days=5)
