"""The EVM chain, read over JSON-RPC: receipts, their ERC-20 Transfer logs, confirmations.

The node is asked directly, over one aiohttp session that keeps its connections open. (Through
web3 a read cost several times the read itself: a new connection per request, a thread hop per
request for its session cache, and result formatters, measured with the verifier's reads of
hundreds of receipts a second.)
"""

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from settlement_svc.domain.chain_logs import transfer
from settlement_svc.domain.model import TransactionFacts


class ChainError(Exception):
    """The node answered a JSON-RPC error."""


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    timestamp: int


def _facts(receipt: dict[str, Any], head: int) -> TransactionFacts:
    block = int(receipt["blockNumber"], 16)
    return TransactionFacts(
        succeeded=int(receipt["status"], 16) == 1,
        block_number=block,
        confirmations=head - block,
        transfers=tuple(t for t in map(transfer, receipt["logs"]) if t is not None),
    )


class Chain:
    def __init__(self, rpc_url: str, timeout_seconds: float) -> None:
        self._url = rpc_url
        self._timeout = ClientTimeout(total=timeout_seconds)
        self._session: ClientSession | None = None
        self._ids = itertools.count(1)

    async def _call(self, method: str, *params: Any) -> Any:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=self._timeout, raise_for_status=True)
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        async with self._session.post(self._url, json=request) as response:
            answer = await response.json(content_type=None)
        if "error" in answer:
            raise ChainError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer["result"]

    async def chain_id(self) -> int:
        return int(await self._call("eth_chainId"), 16)

    async def known(self, transaction_hash: str) -> bool:
        """Whether the node has the transaction, mined or waiting in its mempool."""
        return await self._call("eth_getTransactionByHash", transaction_hash) is not None

    async def facts(
        self, transaction_hashes: Sequence[str], concurrency: int
    ) -> list[TransactionFacts | Exception | None]:
        """What the chain says of each transaction, in their order, read `concurrency` at a time:
        None while one is not in the canonical chain (unknown, pending, or dropped by a reorg),
        the error where its read failed. Confirmations count from one reading of the head, taken
        after the receipts so that it is at least each one's block. Raises when the head cannot
        be read."""
        slots = asyncio.Semaphore(concurrency)

        async def receipt(transaction_hash: str) -> Any:
            async with slots:
                try:
                    return await self._call("eth_getTransactionReceipt", transaction_hash)
                except Exception as error:
                    return error

        receipts = await asyncio.gather(*map(receipt, transaction_hashes))
        mined = [r for r in receipts if r is not None and not isinstance(r, Exception)]
        head = int(await self._call("eth_blockNumber"), 16) if mined else 0
        return [r if r is None or isinstance(r, Exception) else _facts(r, head) for r in receipts]

    async def head(self) -> int:
        """The number of the latest block."""
        return int(await self._call("eth_blockNumber"), 16)

    async def block(self, number: int | str) -> Block | None:
        """A canonical block by number (or "latest"); None when the chain is not that long."""
        tag = number if isinstance(number, str) else hex(number)
        found = await self._call("eth_getBlockByNumber", tag, False)
        if found is None:
            return None
        return Block(int(found["number"], 16), found["hash"], int(found["timestamp"], 16))

    async def logs(
        self, address: str, topics: Sequence[Sequence[str] | str | None], first: int, last: int
    ) -> list[dict[str, Any]]:
        """The logs `address` emitted in blocks first..last (inclusive) matching `topics`, as the
        node answers them (eth_getLogs)."""
        query = {
            "address": address,
            "topics": list(topics),
            "fromBlock": hex(first),
            "toBlock": hex(last),
        }
        found: list[dict[str, Any]] = await self._call("eth_getLogs", query)
        return found

    async def call(self, to: str, data: bytes) -> bytes:
        """eth_call against the latest block: a view function's encoded answer."""
        found = await self._call("eth_call", {"to": to, "data": "0x" + data.hex()}, "latest")
        return bytes.fromhex(found[2:])

    async def estimate_gas(self, sender: str, to: str, data: bytes) -> int:
        """Gas the call would use; raises ChainError with the revert reason when it would
        revert."""
        query = {"from": sender, "to": to, "data": "0x" + data.hex()}
        return int(await self._call("eth_estimateGas", query), 16)

    async def gas_price(self) -> int:
        return int(await self._call("eth_gasPrice"), 16)

    async def balance(self, address: str) -> int:
        """The account's ether balance, in wei."""
        return int(await self._call("eth_getBalance", address, "latest"), 16)

    async def transaction_count(self, address: str) -> int:
        """The next nonce of the account, counting its transactions still in the mempool."""
        return int(await self._call("eth_getTransactionCount", address, "pending"), 16)

    async def send_raw(self, raw_transaction: bytes) -> str:
        """Broadcasts a signed transaction; answers its hash."""
        found: str = await self._call("eth_sendRawTransaction", "0x" + raw_transaction.hex())
        return found

    async def confirmations(self, transaction_hash: str, head: int) -> int:
        """Blocks from the transaction's (itself counted) up to `head`; 0 while it is not in a
        canonical block."""
        receipt = await self._call("eth_getTransactionReceipt", transaction_hash)
        return 0 if receipt is None else max(0, head - int(receipt["blockNumber"], 16) + 1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
