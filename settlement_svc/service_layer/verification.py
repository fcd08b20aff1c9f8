"""Checking pending settlements against the chain until they are confirmed, failed or expired.

A confirmation posts the payment to the ledger and tells invoicing (through the outbox) in the
same transaction that records it; a failure tells invoicing too.
"""

from dataclasses import replace
from datetime import datetime

import structlog
from eth_utils.address import to_checksum_address

from settlement_svc.domain import ledger
from settlement_svc.domain.model import Settlement, SettlementStatus
from settlement_svc.domain.verification import PaymentTerms, from_base_units, judge, to_base_units
from settlement_svc.service_layer.unit_of_work import (
    FAILED,
    SETTLED,
    Settlements,
    SettlementUnitOfWork,
)

log = structlog.get_logger()
BATCH = 20


async def verify_pending(settlements: Settlements, settlement_id: str | None = None) -> int:
    """One pass over pending settlements (or one of them). Returns how many reached a verdict.
    While the chain cannot be reached, or is not the configured one, they stay PENDING."""
    if not await settlements.chain_check.check():
        return 0
    settings = settlements.settings
    token = str(to_checksum_address(settings.usdc_contract_address))
    decided = 0
    async with settlements.unit_of_work() as uow:
        for settlement in await uow.settlements.claim_pending(BATCH, settlement_id):
            now = settlements.clock.now()
            try:
                facts = await settlements.chain.facts(settlement.transaction_hash)
            except Exception as error:
                log.warning("chain.unreachable", settlement=settlement.id, error=str(error))
                continue
            final = facts is not None and facts.confirmations >= settings.required_confirmations
            verdict = judge(
                PaymentTerms(
                    token=token,
                    payer=settlement.payer_wallet_address,
                    merchant=settlement.merchant_wallet_address,
                    amount_due=to_base_units(settlement.amount_due),
                ),
                facts,
                required_confirmations=settings.required_confirmations,
                expired=now - settlement.create_time >= settings.settlement_expiry,
                used_elsewhere=final and await uow.settlements.confirmed_elsewhere(settlement),
            )
            judged = replace(
                settlement,
                status=verdict.status,
                failure_reason=verdict.reason,
                failure_detail=verdict.detail,
                amount_paid=None
                if verdict.amount_paid is None
                else from_base_units(verdict.amount_paid),
                block_number=verdict.block_number,
                confirmations=verdict.confirmations,
                confirm_time=now if verdict.status is SettlementStatus.CONFIRMED else None,
            )
            await uow.settlements.record_verdict(judged)
            if judged.status is SettlementStatus.CONFIRMED:
                await _post_payment(uow, judged, now)
                await uow.outbox.add(
                    uow.session, judged.merchant_id, SETTLED, {"settlement_id": judged.id}, now
                )
                decided += 1
            elif judged.status is SettlementStatus.FAILED:
                await uow.outbox.add(
                    uow.session, judged.merchant_id, FAILED, {"settlement_id": judged.id}, now
                )
                decided += 1
        await uow.commit()
    return decided


async def _post_payment(uow: SettlementUnitOfWork, settlement: Settlement, now: datetime) -> None:
    assert settlement.amount_paid is not None
    if settlement.invoice_id:
        kind = "payment"
        entries = ledger.payment_posting(
            settlement.user_id, settlement.amount_due, settlement.amount_paid
        )
    else:
        kind = "checkout_payment"
        entries = ledger.checkout_payment_posting(
            settlement.user_id, settlement.amount_due, settlement.amount_paid
        )
    await uow.journal.post(settlement.merchant_id, kind, settlement.id, entries, now)
