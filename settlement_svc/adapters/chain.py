"""The EVM chain, read through web3: receipts, their ERC-20 Transfer logs, confirmations."""

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import ClientSession
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3
from web3.exceptions import TransactionNotFound

from settlement_svc.domain.model import TokenTransfer, TransactionFacts

TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")


def _transfer(log: Any) -> TokenTransfer | None:
    """Decodes a standard Transfer(address indexed, address indexed, uint256) log."""
    topics = log["topics"]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC or len(log["data"]) != 32:
        return None
    return TokenTransfer(
        token=Web3.to_checksum_address(log["address"]),
        sender=Web3.to_checksum_address(topics[1][-20:]),
        receiver=Web3.to_checksum_address(topics[2][-20:]),
        value=int.from_bytes(log["data"], "big"),
    )


def _facts(receipt: Any, head: int) -> TransactionFacts:
    return TransactionFacts(
        succeeded=receipt["status"] == 1,
        block_number=receipt["blockNumber"],
        confirmations=head - receipt["blockNumber"],
        transfers=tuple(t for t in map(_transfer, receipt["logs"]) if t is not None),
    )


class Chain:
    def __init__(self, rpc_url: str, timeout_seconds: float) -> None:
        self._provider = AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds})
        self._w3 = AsyncWeb3(self._provider)
        self._session: ClientSession | None = None
        self._connecting = asyncio.Lock()

    async def _connected(self) -> AsyncWeb3[AsyncHTTPProvider]:
        """web3's own HTTP session opens a connection per request (aiohttp's `force_close`);
        this one keeps them open for the next reads."""
        async with self._connecting:
            if self._session is None or self._session.closed:
                self._session = await self._provider.cache_async_session(
                    ClientSession(raise_for_status=True)
                )
        return self._w3

    async def chain_id(self) -> int:
        return int(await (await self._connected()).eth.chain_id)

    async def known(self, transaction_hash: str) -> bool:
        """Whether the node has the transaction, mined or waiting in its mempool."""
        try:
            await (await self._connected()).eth.get_transaction(transaction_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    async def facts(
        self, transaction_hashes: Sequence[str], concurrency: int
    ) -> list[TransactionFacts | Exception | None]:
        """What the chain says of each transaction, in their order, read `concurrency` at a time:
        None while one is not in the canonical chain (unknown, pending, or dropped by a reorg),
        the error where its read failed. Confirmations count from one reading of the head, taken
        after the receipts so that it is at least each one's block. Raises when the head cannot
        be read."""
        w3 = await self._connected()
        slots = asyncio.Semaphore(concurrency)

        async def receipt(transaction_hash: str) -> Any:
            async with slots:
                try:
                    return await w3.eth.get_transaction_receipt(transaction_hash)  # type: ignore[arg-type]
                except TransactionNotFound:
                    return None
                except Exception as error:
                    return error

        receipts = await asyncio.gather(*map(receipt, transaction_hashes))
        mined = [r for r in receipts if r is not None and not isinstance(r, Exception)]
        head = await w3.eth.block_number if mined else 0
        return [r if r is None or isinstance(r, Exception) else _facts(r, head) for r in receipts]

    async def close(self) -> None:
        await self._w3.provider.disconnect()
