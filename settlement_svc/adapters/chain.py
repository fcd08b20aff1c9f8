"""The EVM chain, read through web3: receipts, their ERC-20 Transfer logs, confirmations."""

from typing import Any

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


class Chain:
    def __init__(self, rpc_url: str, timeout_seconds: float) -> None:
        self._w3 = AsyncWeb3(
            AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds})
        )

    async def chain_id(self) -> int:
        return int(await self._w3.eth.chain_id)

    async def known(self, transaction_hash: str) -> bool:
        """Whether the node has the transaction, mined or waiting in its mempool."""
        try:
            await self._w3.eth.get_transaction(transaction_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    async def facts(self, transaction_hash: str) -> TransactionFacts | None:
        """None while the transaction is not in the canonical chain (unknown, pending, or
        dropped by a reorg)."""
        try:
            receipt = await self._w3.eth.get_transaction_receipt(transaction_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        head = await self._w3.eth.block_number
        transfers = tuple(t for t in map(_transfer, receipt["logs"]) if t is not None)
        return TransactionFacts(
            succeeded=receipt["status"] == 1,
            block_number=receipt["blockNumber"],
            confirmations=head - receipt["blockNumber"],
            transfers=transfers,
        )

    async def close(self) -> None:
        await self._w3.provider.disconnect()
