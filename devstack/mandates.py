"""The mandate contract (contracts/mandates.vy) on the local chain: compiled offline, deployed,
and driven as payers and the collector drive it.

Used by the tests, `make up` (which deploys it), the demo and the bench. The services reach it
only through settlement_svc's chain adapter, like the token.
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

import vyper  # type: ignore[import-untyped]
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import TxParams, TxReceipt

from devstack.chain import REPO_ROOT, split_signature

# In a checkout the repository's contracts/; once installed (the image), site-packages/contracts,
# which pyproject.toml ships as package data.
MANDATES_SOURCE = REPO_ROOT / "contracts" / "mandates.vy"
EVENTS = ("MandateCreated", "MandateRevoked", "Collected", "CollectorChanged")


@cache
def _compiled() -> tuple[tuple[dict[str, Any], ...], str]:
    compiled = vyper.compile_code(MANDATES_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    return tuple(compiled["abi"]), compiled["bytecode"]


def compile_mandates() -> tuple[list[dict[str, Any]], str]:
    """The contract's ABI and bytecode (compiled once per process, about 0.3 s)."""
    abi, bytecode = _compiled()
    return list(abi), bytecode


@dataclass(frozen=True)
class MandateState:
    """A mandate as the contract's `mandates(payer, merchant)` returns it; all zero if none."""

    cap: int
    period: int
    start: int
    expiry: int
    period_index: int
    spent: int
    revoked: bool


@dataclass(frozen=True)
class MandateEvent:
    """One of the contract's logs, decoded: its event name, arguments and where it is."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    # 0x + 64 hex digits.
    transaction_hash: str


class Mandates:
    """The deployed contract. Every sender is an unlocked (or impersonated) account of the node;
    a refused call raises web3's ContractLogicError with the contract's reason, unless `gas` is
    set, when it is mined as reverted instead."""

    def __init__(self, w3: AsyncWeb3[Any], address: str, abi: list[dict[str, Any]]) -> None:
        self.w3 = w3
        self.address = address
        self.contract = w3.eth.contract(address=w3.to_checksum_address(address), abi=abi)
        # Each event's topic 0 (the hash of its signature), to decode logs by.
        self._event_names = {
            bytes(w3.keccak(text=self.contract.events[name]().signature)): name for name in EVENTS
        }

    @classmethod
    def at(cls, url: str, address: str) -> "Mandates":
        """The contract already deployed at `address`."""
        abi, _ = compile_mandates()
        return cls(AsyncWeb3(AsyncHTTPProvider(url)), address, abi)

    @classmethod
    async def deploy(cls, url: str, deployer: str, token: str, collector: str) -> "Mandates":
        """Deploys the contract for `token` with `collector`; `deployer` becomes its owner."""
        w3 = AsyncWeb3(AsyncHTTPProvider(url))
        abi, bytecode = compile_mandates()
        factory = w3.eth.contract(abi=abi, bytecode=bytecode)
        tx_hash = await factory.constructor(
            w3.to_checksum_address(token), w3.to_checksum_address(collector)
        ).transact({"from": deployer})
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        return cls(w3, str(receipt["contractAddress"]), abi)

    async def _send(self, call: Any, sender: str, gas: int | None) -> TxReceipt:
        options: TxParams = {"from": self.w3.to_checksum_address(sender)}
        if gas is not None:
            options["gas"] = gas
        tx_hash = await call.transact(options)
        return await self.w3.eth.wait_for_transaction_receipt(tx_hash)

    async def create(
        self,
        payer: str,
        merchant: str,
        cap: int,
        period: int,
        expiry: int,
        gas: int | None = None,
    ) -> TxReceipt:
        """The payer's own create_mandate (sent from `payer`)."""
        call = self.contract.functions.create_mandate(
            self.w3.to_checksum_address(merchant), cap, period, expiry
        )
        return await self._send(call, payer, gas)

    async def create_with_signature(
        self, sender: str, message: dict[str, Any], signature: str, gas: int | None = None
    ) -> TxReceipt:
        """Relays a signed Mandate (see devstack/mandate_signature.py: payer, merchant, cap,
        period, expiry, nonce, deadline) from `sender`; the nonce is the contract's to check."""
        v, r, s = split_signature(signature)
        call = self.contract.functions.create_mandate_with_signature(
            self.w3.to_checksum_address(message["payer"]),
            self.w3.to_checksum_address(message["merchant"]),
            int(message["cap"]),
            int(message["period"]),
            int(message["expiry"]),
            int(message["deadline"]),
            v,
            r,
            s,
        )
        return await self._send(call, sender, gas)

    async def revoke(self, payer: str, merchant: str, gas: int | None = None) -> TxReceipt:
        call = self.contract.functions.revoke(self.w3.to_checksum_address(merchant))
        return await self._send(call, payer, gas)

    async def collect(
        self,
        collector: str,
        payer: str,
        merchant: str,
        amount: int,
        reference: bytes,
        gas: int | None = None,
    ) -> TxReceipt:
        call = self.contract.functions.collect(
            self.w3.to_checksum_address(payer),
            self.w3.to_checksum_address(merchant),
            amount,
            reference,
        )
        return await self._send(call, collector, gas)

    async def set_collector(self, owner: str, collector: str, gas: int | None = None) -> TxReceipt:
        call = self.contract.functions.set_collector(self.w3.to_checksum_address(collector))
        return await self._send(call, owner, gas)

    async def mandate(self, payer: str, merchant: str) -> MandateState:
        fields = await self.contract.functions.mandates(
            self.w3.to_checksum_address(payer), self.w3.to_checksum_address(merchant)
        ).call()
        cap, period, start, expiry, period_index, spent, revoked = fields
        return MandateState(cap, period, start, expiry, period_index, spent, bool(revoked))

    async def available(self, payer: str, merchant: str) -> int:
        """What collect would accept now by the mandate alone (latest block's time)."""
        return int(
            await self.contract.functions.available(
                self.w3.to_checksum_address(payer), self.w3.to_checksum_address(merchant)
            ).call()
        )

    async def collected(self, reference: bytes) -> bool:
        return bool(await self.contract.functions.collected(reference).call())

    async def nonce(self, payer: str) -> int:
        """The nonce the payer's next signed mandate must carry."""
        return int(await self.contract.functions.nonces(self.w3.to_checksum_address(payer)).call())

    async def collector(self) -> str:
        return str(await self.contract.functions.collector().call())

    async def domain_separator(self) -> str:
        """The contract's EIP-712 domain separator (0x + 64 hex digits), as it computes it now."""
        return "0x" + bytes(await self.contract.functions.DOMAIN_SEPARATOR().call()).hex()

    def events_of(self, receipt: TxReceipt) -> list[MandateEvent]:
        """This contract's events in a receipt, in log order (other contracts' logs skipped)."""
        return [self._decoded(log) for log in receipt["logs"] if self._emitted(log)]

    async def events(
        self, from_block: int = 0, to_block: int | str = "latest"
    ) -> list[MandateEvent]:
        """Every event of this contract in the block range, in chain order (one eth_getLogs)."""
        found = await self.w3.eth.get_logs(
            {
                "address": self.contract.address,
                "fromBlock": from_block,
                "toBlock": to_block,  # type: ignore[typeddict-item]
            }
        )
        return [self._decoded(log) for log in found]

    def _emitted(self, log: Any) -> bool:
        return bool(str(log["address"]).lower() == self.contract.address.lower())

    def _decoded(self, log: Any) -> MandateEvent:
        topic = bytes(log["topics"][0])
        name = self._event_names.get(topic)
        if name is None:
            raise ValueError(f"not an event of the mandate contract: topic 0x{topic.hex()}")
        decoded = self.contract.events[name]().process_log(log)
        return MandateEvent(
            name,
            dict(decoded["args"]),
            int(log["blockNumber"]),
            int(log["logIndex"]),
            "0x" + bytes(log["transactionHash"]).hex(),
        )

    async def close(self) -> None:
        await self.w3.provider.disconnect()
