"""Is the node the chain settlement is configured for? Nothing is verified against another chain:
a transaction hash found there proves nothing about a payment here."""

import asyncio

import structlog

from service_kit.errors import Unavailable
from settlement_svc.adapters.chain import Chain

log = structlog.get_logger()


class ChainCheck:
    """Asks the node its chain id until it answered once with the configured one. A node that
    cannot be reached is asked again later; one on another chain keeps settlement not ready."""

    def __init__(self, chain: Chain, rpc_url: str, expected: int) -> None:
        self._chain = chain
        self._rpc_url = rpc_url
        self._expected = expected
        self._lock = asyncio.Lock()
        self.matched = False
        self.mismatch = ""

    async def check(self) -> bool:
        """True once the node answered with the configured chain id; False while it cannot be
        reached or answers for another chain (then `mismatch` says so)."""
        if self.matched:
            return True
        async with self._lock:
            if self.matched:
                return True
            try:
                found = await self._chain.chain_id()
            except Exception as error:
                log.warning("chain.unreachable", url=self._rpc_url, error=str(error))
                return False
            if found != self._expected:
                self.mismatch = (
                    f"the node at {self._rpc_url} is chain {found}, "
                    f"not SETTLEMENT_CHAIN_ID {self._expected}"
                )
                log.error("chain.mismatch", detail=self.mismatch)
                return False
            self.matched, self.mismatch = True, ""
            return True

    async def require(self) -> None:
        """For a use case about to read the chain: refuses while the chain is not confirmed."""
        if not await self.check():
            raise Unavailable(
                f"settlement is not ready: {self.mismatch or 'the chain cannot be reached'}"
            )
