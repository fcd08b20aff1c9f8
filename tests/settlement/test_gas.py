"""The gas price a stuck transaction is signed again for."""

import pytest

from settlement_svc.domain.gas import replacement_price

GWEI = 10**9


@pytest.mark.parametrize(
    ("own", "node", "ceiling", "price"),
    [
        (GWEI, GWEI, 500 * GWEI, None),  # the node asks no more: waiting is what it needs
        (GWEI, GWEI - 1, 500 * GWEI, None),
        (GWEI, 4 * GWEI, 500 * GWEI, 4 * GWEI),  # the node's price
        (GWEI, GWEI + 1, 500 * GWEI, 1_250_000_000),  # at least 25% more
        (3, 4, 500 * GWEI, 4),  # 25% of 3 rounds up to 1
        (400 * GWEI, 900 * GWEI, 500 * GWEI, 500 * GWEI),  # never above the ceiling
        (500 * GWEI, 900 * GWEI, 500 * GWEI, None),  # at the ceiling already
    ],
)
def test_replacement_price(own: int, node: int, ceiling: int, price: int | None) -> None:
    assert replacement_price(own, node, ceiling) == price
