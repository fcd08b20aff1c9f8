"""Enrolling a subscriber in auto-pay.

The payer signs the mandate (EIP-712, the mandate contract's domain); the collector relays it, so
the payer pays no gas. Everything the contract will check is tried first with `eth_estimateGas`:
a bad signature or an expired deadline is refused before anything is signed. The payee is the
merchant's payout wallet on record, never a value of the request. The mandate is PENDING until
the contract holds it (mandate_events follows the contract).
"""

from datetime import UTC, datetime

import structlog

from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from service_kit.ids import new_id
from settlement_svc.adapters.chain import ChainError
from settlement_svc.adapters.mandate_contract import create_with_signature_call
from settlement_svc.domain import formats
from settlement_svc.domain.mandates import Mandate, MandateStatus
from settlement_svc.domain.verification import from_base_units
from settlement_svc.service_layer import transactions
from settlement_svc.service_layer.payout_wallets import payee
from settlement_svc.service_layer.unit_of_work import Settlements

log = structlog.get_logger()
# Refusals of the contract that are the request's fault, by their revert reason.
_BAD_SIGNATURE = ("invalid signature", "signature expired")


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
) -> Mandate:
    """Relays the payer's signed mandate for the subscription; the PENDING mandate."""
    contract, key = settlements.mandates, settlements.collector
    if key is None or not contract.address:
        raise FailedPrecondition(
            "auto-pay is not configured (SETTLEMENT_MANDATES_CONTRACT_ADDRESS and the collector's "
            "key)",
            field="subscription_id",
        )
    formats.reference(subscription_id, "subscription_id")
    payer = formats.wallet(payer_wallet_address, "payer_wallet_address")
    raw_signature = formats.signature(signature, "signature")
    if cap_base_units <= 0:
        raise InvalidArgument("cap_base_units must be positive", field="cap_base_units")
    if period_seconds <= 0:
        raise InvalidArgument("period_seconds must be positive", field="period_seconds")
    if expire_time <= settlements.clock.now():
        raise InvalidArgument("expire_time must be in the future", field="expire_time")
    await settlements.chain_check.require()
    user_id = await settlements.invoicing.subscriber(merchant_id, subscription_id)
    async with settlements.unit_of_work() as uow:
        merchant = await payee(uow, merchant_id)
    expiry, until = int(expire_time.timestamp()), int(deadline.timestamp())
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
        outgoing = await transactions.sign_next(settlements, uow, key, contract.address, data, gas)
        now = settlements.clock.now()
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
            transaction_hash=outgoing.transaction_hash,
            create_time=now,
        )
        await uow.mandates.add(mandate)
        await uow.commit()
    await transactions.send(settlements, outgoing)
    return mandate


async def get_mandate(settlements: Settlements, merchant_id: str, subscription_id: str) -> Mandate:
    formats.reference(subscription_id, "subscription_id")
    async with settlements.unit_of_work() as uow:
        found = await uow.mandates.of_subscription(merchant_id, subscription_id)
    if found is None:
        raise NotFound(f"subscription {subscription_id} has no mandate", field="subscription_id")
    return found
