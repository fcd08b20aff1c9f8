"""MockUSDC signs and verifies under real USDC's EIP-712 domain and type hashes."""

import pytest
from eth_abi.abi import encode
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from devstack.chain import CHAIN_ID, Anvil, MockUsdc
from tests.chain import eip712
from tests.chain.conftest import authorization, funded_wallet, new_key, revert_reason


def usdc_domain_separator(token: str, chain_id: int) -> str:
    """EIP712.makeDomainSeparator(name, "2", chainId) of FiatTokenV2_2, computed here."""
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=eip712.EIP712_DOMAIN),
                keccak(text="USD Coin"),
                keccak(text="2"),
                chain_id,
                token,
            ],
        )
    )
    return "0x" + separator.hex()


async def test_the_token_presents_itself_as_usdc(usdc: MockUsdc) -> None:
    functions = usdc.contract.functions
    assert await functions.name().call() == "USD Coin"
    assert await functions.symbol().call() == "USDC"
    assert await functions.decimals().call() == 6
    assert await functions.version().call() == "2"


async def test_the_domain_separator_is_real_usdcs(usdc: MockUsdc) -> None:
    expected = usdc_domain_separator(usdc.address, CHAIN_ID)
    assert await usdc.domain_separator() == expected
    # eth-account's EIP-712 encoder (what wallets compute) gives the same domain hash.
    signable = encode_typed_data(
        full_message=eip712.typed_data(
            usdc.address, "CancelAuthorization", {"authorizer": usdc.address, "nonce": b"\0" * 32}
        )
    )
    assert "0x" + bytes(signable.header).hex() == expected


@pytest.mark.parametrize("constant", sorted(eip712.TYPE_HASHES))
async def test_a_type_hash_is_keccak_of_usdcs_type_string(usdc: MockUsdc, constant: str) -> None:
    type_string, declared_by_circle = eip712.TYPE_HASHES[constant]
    on_chain = await getattr(usdc.contract.functions, constant)().call()
    assert "0x" + keccak(text=type_string).hex() == declared_by_circle
    assert "0x" + bytes(on_chain).hex() == declared_by_circle


async def test_the_domain_follows_the_chain_id_of_each_call() -> None:
    """As FiatTokenV2_2, the separator is computed per call: on a fork that takes another chain
    id, signatures made for the old id stop verifying and those for the new one verify. (A
    private anvil: the session's must keep its id.)"""
    chain = Anvil()
    chain.start()
    token = await MockUsdc.deploy(chain.url, chain.accounts[0])
    try:
        payer = await funded_wallet(token, chain)
        payee = new_key().address
        await token.w3.provider.make_request("anvil_setChainId", [1])
        # anvil's dev signer keeps signing for 31337: send as an impersonated (unsigned) account.
        submitter = new_key().address
        for method, params in (
            ("anvil_setBalance", [submitter, hex(10**18)]),
            ("anvil_impersonateAccount", [submitter]),
        ):
            await token.w3.provider.make_request(method, params)

        assert await token.domain_separator() == usdc_domain_separator(token.address, 1)
        message = await authorization(token, payer.address, payee, 1_000)
        for_the_old_chain = eip712.sign(
            payer.key, token.address, "TransferWithAuthorization", message
        )
        assert (
            await revert_reason(
                token.transfer_with_authorization(submitter, message, for_the_old_chain)
            )
            == "FiatTokenV2: invalid signature"
        )
        for_the_new_chain = eip712.sign(
            payer.key, token.address, "TransferWithAuthorization", message, chain_id=1
        )
        await token.transfer_with_authorization(submitter, message, for_the_new_chain)
        assert await token.balance(payee) == 1_000
    finally:
        await token.close()
        chain.stop()
