"""Enrolling a subscriber in auto-pay.

The payer signs the mandate (EIP-712, the mandate contract's domain) and, when it has not approved
the contract itself, an EIP-2612 permit letting the contract move its USDC; the collector relays
both (the permit first), so the payer pays no gas. Everything the token and the contract will
check is tried first with `eth_estimateGas`: a bad signature or an expired deadline is refused
before anything is signed. The payee is the merchant's payout wallet on record, never a value of
the request. The mandate is PENDING until the contract holds it (mandate_events follows the
contract).

The same mandate again answers the first and relays nothing: while the subscription's newest
mandate is live (PENDING or ACTIVE) with the same payer, merchant wallet, contract and terms, a
repeat (a retry, the page posting twice, the same signature replayed) is that mandate. Relays
serialize on the collector's account lock, and the check is made again under it, so two repeats
racing each other are relayed once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from service_kit.ids import new_id
from settlement_svc.adapters.account_key import AccountKey
from settlement_svc.adapters.chain import ChainError
from settlement_svc.adapters.mandate_contract import create_with_signature_call
from settlement_svc.adapters.usdc import permit_call
from settlement_svc.domain import formats
from settlement_svc.domain.mandates import Mandate, MandateStatus
from settlement_svc.domain.verification import from_base_units
from settlement_svc.service_layer import transactions
from settlement_svc.service_layer.payout_wallets import payee
from settlement_svc.service_layer.unit_of_work import Settlements, SettlementUnitOfWork

log = structlog.get_logger()
# Refusals of the contract that are the request's fault, by their revert reason.
_BAD_SIGNATURE = ("invalid signature", "signature expired")
# The token's (MockUSDC's and FiatTokenV2's) refusals of a permit, and the field each blames.
_BAD_PERMIT = {"permit is expired": "permit.deadline", "invalid signature": "permit.signature"}
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class PermitTerms:
    """The payer's EIP-2612 permit for the mandate contract, as the request gives it."""

    value: str
    deadline: datetime
    signature: str


@dataclass(frozen=True)
class MandateContractInfo:
    """What a wallet signs a mandate of the merchant under."""

    contract_address: str
    chain_id: int
    merchant_wallet_address: str
    token_address: str
    token_name: str
    token_version: str


def _permit_value(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 78:
        raise InvalidArgument("permit.value must be a decimal integer", field="permit.value")
    value = int(text)
    if not 0 < value <= MAX_UINT256:
        raise InvalidArgument("permit.value must be above 0 and below 2^256", field="permit.value")
    return value


def _collector(settlements: Settlements) -> AccountKey:
    """The account that relays mandates; FAILED_PRECONDITION while auto-pay is not configured."""
    if settlements.collector is None or not settlements.mandates.address:
        raise FailedPrecondition(
            "auto-pay is not configured (SETTLEMENT_MANDATES_CONTRACT_ADDRESS and the collector's "
            "key)",
            field="subscription_id",
        )
    return settlements.collector


async def _same_mandate(
    uow: SettlementUnitOfWork,
    merchant_id: str,
    subscription_id: str,
    wallets: tuple[str, str],
    contract: str,
    terms: tuple[int, int, int],
) -> Mandate | None:
    """The subscription's newest mandate when it is live and is this one (payer, merchant
    wallet, contract, cap, period, expiry)."""
    found = await uow.mandates.of_subscription(merchant_id, subscription_id)
    if (
        found is None
        or found.status not in (MandateStatus.PENDING, MandateStatus.ACTIVE)
        or (found.payer_wallet_address, found.merchant_wallet_address) != wallets
        or found.contract_address != contract
        or not found.has_terms(*terms)
    ):
        return None
    return found


async def _quote_permit(
    settlements: Settlements, key: AccountKey, payer: str, permit: PermitTerms
) -> tuple[bytes, transactions.GasQuote]:
    """The permit's call data and gas; refused as the token would refuse it."""
    value = _permit_value(permit.value)
    raw_signature = formats.signature(permit.signature, "permit.signature")
    token = settlements.usdc.token
    data = permit_call(
        payer,
        settlements.mandates.address,
        value,
        int(permit.deadline.timestamp()),
        raw_signature,
    )
    try:
        return data, await transactions.quote(settlements, key, token, data)
    except ChainError as error:
        reason = str(error)
        for bad, field in _BAD_PERMIT.items():
            if bad in reason:
                raise InvalidArgument(
                    f"the token refuses the permit: {reason}", field=field
                ) from None
        raise FailedPrecondition(f"the token refuses the permit: {reason}") from None
    except Exception as error:
        raise Unavailable(f"the chain cannot be reached: {error}") from None


async def create_mandate(
    settlements: Settlements,
    merchant_id: str,
    *,
    subscription_id: str,
    payer_wallet_address: str,
    cap_base_units: int,
    period_seconds: int,
    expire_time: datetime,
    deadline: datetime,
    signature: str,
    permit: PermitTerms | None = None,
) -> Mandate:
    """Relays the payer's signed mandate for the subscription (after its permit, if given); the
    PENDING mandate, or the live one it repeats."""
    key = _collector(settlements)
    contract = settlements.mandates
    formats.reference(subscription_id, "subscription_id")
    payer = formats.wallet(payer_wallet_address, "payer_wallet_address")
    raw_signature = formats.signature(signature, "signature")
    if cap_base_units <= 0:
        raise InvalidArgument("cap_base_units must be positive", field="cap_base_units")
    if period_seconds <= 0:
        raise InvalidArgument("period_seconds must be positive", field="period_seconds")
    if expire_time <= settlements.clock.now():
        raise InvalidArgument("expire_time must be in the future", field="expire_time")
    expiry, until = int(expire_time.timestamp()), int(deadline.timestamp())
    terms = (cap_base_units, period_seconds, expiry)
    await settlements.chain_check.require()
    user_id = await settlements.invoicing.subscriber(merchant_id, subscription_id)
    async with settlements.unit_of_work() as uow:
        merchant = await payee(uow, merchant_id)
        wallets = (payer, merchant)
        repeated = await _same_mandate(
            uow, merchant_id, subscription_id, wallets, contract.address, terms
        )
    if repeated is not None:
        return repeated
    permitted = await _quote_permit(settlements, key, payer, permit) if permit else None
    data = create_with_signature_call(
        payer, merchant, cap_base_units, period_seconds, expiry, until, raw_signature
    )
    try:
        gas = await transactions.quote(settlements, key, contract.address, data)
    except ChainError as error:
        reason = str(error)
        if any(bad in reason for bad in _BAD_SIGNATURE):
            raise InvalidArgument(
                f"the mandate contract refuses the signature: {reason}", field="signature"
            ) from None
        raise FailedPrecondition(f"the mandate contract refuses it: {reason}") from None
    except Exception as error:
        raise Unavailable(f"the chain cannot be reached: {error}") from None
    async with settlements.unit_of_work() as uow:
        # Every relay of the collector waits here: a repeat that raced this one is seen.
        await uow.outgoing.lock_account(key.address)
        repeated = await _same_mandate(
            uow, merchant_id, subscription_id, wallets, contract.address, terms
        )
        if repeated is not None:
            return repeated
        outgoing = []
        if permitted is not None:
            token = settlements.usdc.token
            permit_data, permit_gas = permitted
            outgoing.append(
                await transactions.sign_next(settlements, uow, key, token, permit_data, permit_gas)
            )
        # Signed after the permit, so its nonce is the next: never mined before it.
        relayed = await transactions.sign_next(settlements, uow, key, contract.address, data, gas)
        outgoing.append(relayed)
        mandate = Mandate(
            id=new_id("mdt"),
            merchant_id=merchant_id,
            user_id=user_id,
            subscription_id=subscription_id,
            payer_wallet_address=payer,
            merchant_wallet_address=merchant,
            contract_address=contract.address,
            cap=from_base_units(cap_base_units),
            period_seconds=period_seconds,
            expire_time=datetime.fromtimestamp(expiry, UTC),
            status=MandateStatus.PENDING,
            transaction_hash=relayed.transaction_hash,
            create_time=settlements.clock.now(),
        )
        await uow.mandates.add(mandate)
        await uow.commit()
    for transaction in outgoing:
        await transactions.send(settlements, transaction)
    log.info("mandate.relayed", mandate=mandate.id, permit=permitted is not None)
    return mandate


async def get_mandate(settlements: Settlements, merchant_id: str, subscription_id: str) -> Mandate:
    formats.reference(subscription_id, "subscription_id")
    async with settlements.unit_of_work() as uow:
        found = await uow.mandates.of_subscription(merchant_id, subscription_id)
    if found is None:
        raise NotFound(f"subscription {subscription_id} has no mandate", field="subscription_id")
    return found


async def get_mandate_contract(settlements: Settlements, merchant_id: str) -> MandateContractInfo:
    """The contract, chain and token a subscriber's wallet signs for, and the merchant's payout
    wallet the mandate pays."""
    _collector(settlements)
    async with settlements.unit_of_work() as uow:
        merchant = await payee(uow, merchant_id)
    config = settlements.settings
    return MandateContractInfo(
        contract_address=settlements.mandates.address,
        chain_id=config.chain_id,
        merchant_wallet_address=merchant,
        token_address=settlements.usdc.token,
        token_name=config.usdc_eip712_name,
        token_version=config.usdc_eip712_version,
    )
