"""What the platform's own transactions pay for gas."""

# The least raise of a replacement's gas price (geth's mempool refuses under 10%).
GAS_BUMP_PERCENT = 25


def replacement_price(own: int, node_price: int, ceiling: int) -> int | None:
    """The gas price a stuck transaction paying `own` is signed again for: the node's price, and
    at least GAS_BUMP_PERCENT over its own (nodes refuse a smaller raise at one nonce), at most
    `ceiling`. None while the node asks no more than it pays (waiting is what it needs), or when
    it pays the ceiling already."""
    if node_price <= own or own >= ceiling:
        return None
    return min(ceiling, max(node_price, own + (own * GAS_BUMP_PERCENT + 99) // 100))
