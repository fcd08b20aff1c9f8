"""The local chain: anvil (from the npm package @foundry-rs/anvil) and a MockUSDC deployed on it.

Used by `make up` and the tests. web3 here drives the chain like a wallet would; the services
reach the chain only through settlement_svc/adapters/chain.py.
"""

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import vyper  # type: ignore[import-untyped]
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import TxParams

from devstack.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
MOCK_USDC_SOURCE = Path(__file__).parent / "contracts" / "mock_usdc.vy"
CHAIN_ID = 31337


class Anvil:
    """An anvil process on a loopback port; its dev accounts come from its --config-out file."""

    def __init__(
        self, port: int | None = None, state: Path | None = None, genesis_time: int | None = None
    ) -> None:
        self.port = port or free_port()
        # Where anvil keeps the chain between runs (loaded at start, written at exit).
        self.state = state
        # Unix time of the genesis block; later blocks keep anvil's offset from the wall clock.
        # The tests set their frozen clock's start, so block times and the platform agree.
        self.genesis_time = genesis_time
        self.url = f"http://127.0.0.1:{self.port}"
        self._config = Path(tempfile.mkdtemp(prefix="anvil-")) / "config.json"
        self._process: subprocess.Popen[bytes] | None = None
        self.accounts: list[str] = []
        self.private_keys: list[str] = []

    def start(self) -> None:
        if not ANVIL.exists():
            raise FileNotFoundError(f"{ANVIL} is missing: run `npm install` (make install does)")
        options = ["--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(CHAIN_ID)]
        if self.state is not None:
            options += ["--state", str(self.state)]
        if self.genesis_time is not None:
            options += ["--timestamp", str(self.genesis_time)]
        # A restart waits for the config of its own process, not the one of the last run.
        self._config.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [str(ANVIL), *options, "--config-out", str(self._config), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self._config.exists() or not self._config.read_text().strip():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start on port {self.port}")
            time.sleep(0.05)
        config = json.loads(self._config.read_text())
        self.accounts = [
            str(AsyncWeb3.to_checksum_address(account)) for account in config["available_accounts"]
        ]
        # anvil's public dev keys (the same on every anvil), in the order of `accounts`.
        self.private_keys = list(config["private_keys"])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)


def split_signature(signature: str) -> tuple[int, bytes, bytes]:
    """A 65-byte signature (0x + r, s, v in hex, as wallets and x402 give it) as the (v, r, s)
    that USDC's EIP-3009 and EIP-2612 functions take. A v of 0 or 1 (a bare recovery id, which
    some wallets give) becomes 27 or 28."""
    raw = bytes.fromhex(signature.removeprefix("0x"))
    if len(raw) != 65:
        raise ValueError(f"a signature is 65 bytes, this one is {len(raw)}")
    v = raw[64] + 27 if raw[64] < 27 else raw[64]
    return v, raw[:32], raw[32:64]


def authorization_arguments(authorization: dict[str, Any], signature: str) -> tuple[Any, ...]:
    """The arguments of USDC's transferWithAuthorization and receiveWithAuthorization for an
    authorization of x402's shape: from, to, value, validAfter, validBefore (ints or decimal
    strings) and nonce (0x + 64 hex digits), with its 65-byte signature."""
    v, r, s = split_signature(signature)
    return (
        AsyncWeb3.to_checksum_address(authorization["from"]),
        AsyncWeb3.to_checksum_address(authorization["to"]),
        int(authorization["value"]),
        int(authorization["validAfter"]),
        int(authorization["validBefore"]),
        bytes.fromhex(str(authorization["nonce"]).removeprefix("0x")),
        v,
        r,
        s,
    )


def compile_mock_usdc() -> tuple[list[dict[str, Any]], str]:
    compiled = vyper.compile_code(MOCK_USDC_SOURCE.read_text(), output_formats=["abi", "bytecode"])
    return compiled["abi"], compiled["bytecode"]


class MockUsdc:
    """The deployed token, driven through anvil's unlocked dev accounts."""

    def __init__(self, w3: AsyncWeb3[Any], address: str, abi: list[dict[str, Any]]) -> None:
        self.w3 = w3
        self.address = address
        self.contract = w3.eth.contract(address=w3.to_checksum_address(address), abi=abi)

    @classmethod
    def at(cls, url: str, address: str) -> "MockUsdc":
        """The token already deployed at `address`."""
        abi, _ = compile_mock_usdc()
        return cls(AsyncWeb3(AsyncHTTPProvider(url)), address, abi)

    @classmethod
    async def deploy(cls, url: str, deployer: str) -> "MockUsdc":
        w3 = AsyncWeb3(AsyncHTTPProvider(url))
        abi, bytecode = compile_mock_usdc()
        factory = w3.eth.contract(abi=abi, bytecode=bytecode)
        tx_hash = await factory.constructor().transact({"from": deployer})
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        return cls(w3, str(receipt["contractAddress"]), abi)

    @staticmethod
    async def deployed_at(url: str, address: str) -> bool:
        """Whether a contract has code at `address` on this chain."""
        w3 = AsyncWeb3(AsyncHTTPProvider(url))
        try:
            return len(await w3.eth.get_code(w3.to_checksum_address(address))) > 0
        finally:
            await w3.provider.disconnect()

    async def mint(self, receiver: str, base_units: int, minter: str) -> None:
        tx_hash = await self.contract.functions.mint(receiver, base_units).transact(
            {"from": minter}
        )
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)

    async def transfer(
        self, sender: str, receiver: str, base_units: int, gas: int | None = None
    ) -> str:
        """Sends a transfer and waits until it is mined; returns its hash. With `gas` set, a
        failing transfer is mined as reverted instead of refused by gas estimation."""
        options: TxParams = {"from": sender}
        if gas is not None:
            options["gas"] = gas
        tx_hash = await self.contract.functions.transfer(receiver, base_units).transact(options)
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return str(tx_hash.to_0x_hex())

    async def transfer_with_authorization(
        self,
        sender_account: str,
        authorization: dict[str, Any],
        signature: str,
        gas: int | None = None,
    ) -> str:
        """Submits a signed EIP-3009 authorization (see `authorization_arguments`) from the
        unlocked `sender_account` (anyone may) and waits until it is mined; returns the
        transaction's hash. A refused one raises web3's ContractLogicError with the token's
        reason; with `gas` set, it is mined as reverted instead."""
        options: TxParams = {"from": sender_account}
        if gas is not None:
            options["gas"] = gas
        tx_hash = await self.contract.functions.transferWithAuthorization(
            *authorization_arguments(authorization, signature)
        ).transact(options)
        await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return str(tx_hash.to_0x_hex())

    async def authorization_state(self, authorizer: str, nonce: str) -> bool:
        """Whether the authorizer's EIP-3009 nonce (0x + 64 hex digits) is used or canceled."""
        return bool(
            await self.contract.functions.authorizationState(
                self.w3.to_checksum_address(authorizer), bytes.fromhex(nonce.removeprefix("0x"))
            ).call()
        )

    async def domain_separator(self) -> str:
        """The token's EIP-712 domain separator (0x + 64 hex digits), as it computes it now."""
        return "0x" + bytes(await self.contract.functions.DOMAIN_SEPARATOR().call()).hex()

    async def block_time(self) -> int:
        """The latest block's timestamp: what the token's time checks compare with (next block's
        time is at least this), which may be far from the wall clock."""
        return int((await self.w3.eth.get_block("latest"))["timestamp"])

    async def balance(self, owner: str) -> int:
        return int(await self.contract.functions.balanceOf(owner).call())

    async def mine(self, blocks: int) -> None:
        await self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    async def snapshot(self) -> str:
        return str((await self.w3.provider.make_request("evm_snapshot", []))["result"])

    async def revert(self, snapshot_id: str) -> None:
        await self.w3.provider.make_request("evm_revert", [snapshot_id])

    async def close(self) -> None:
        await self.w3.provider.disconnect()
