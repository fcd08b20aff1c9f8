"""What the outbox relay does with each topic: tell invoicing the outcome of a verification, of a
failed collection attempt (dunning), a mandate's change on chain (webhooks), or a subscriber's
credit balance. The calls are idempotent on the settlement id, on the invoice and attempt
number, on the mandate and change, or on the balance's version. Invoicing has no batch form of
them, and a verification outcome comes one at a time, so each message is one call."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.outbox import Handler, Outbox, OutboxMessage, OutboxRelay, one_at_a_time
from settlement_svc.adapters.mandate_store import MandateStore
from settlement_svc.adapters.settlement_store import SettlementStore
from settlement_svc.adapters.tables import outbox
from settlement_svc.domain.model import Settlement
from settlement_svc.service_layer.unit_of_work import (
    COLLECTION_FAILED,
    CREDIT_BALANCE,
    FAILED,
    MANDATE_CHANGED,
    SETTLED,
    Settlements,
)


def outbox_relay(settlements: Settlements) -> OutboxRelay:
    async def load(session: AsyncSession, message: OutboxMessage) -> Settlement:
        found = await SettlementStore(session).get(
            message.merchant_id, message.payload["settlement_id"]
        )
        assert found is not None
        return found

    async def settled(session: AsyncSession, message: OutboxMessage) -> None:
        await settlements.invoicing.settled(await load(session, message))

    async def failed(session: AsyncSession, message: OutboxMessage) -> None:
        await settlements.invoicing.failed(await load(session, message))

    async def collection_failed(session: AsyncSession, message: OutboxMessage) -> None:
        attempt = message.payload
        following = attempt["next_attempt_time"]
        await settlements.invoicing.collection_failed(
            message.merchant_id,
            attempt["invoice_id"],
            attempt["number"],
            attempt["reason"],
            attempt["detail"],
            datetime.fromisoformat(following) if following else None,
        )

    async def mandate_changed(session: AsyncSession, message: OutboxMessage) -> None:
        change = message.payload
        mandate = await MandateStore(session).get(change["mandate_id"])
        assert mandate is not None
        await settlements.invoicing.mandate_changed(
            mandate, change["change"], change["transaction_hash"]
        )

    async def credit_balance(session: AsyncSession, message: OutboxMessage) -> None:
        report = message.payload
        await settlements.invoicing.credit_balance_changed(
            message.merchant_id, report["user_id"], Decimal(report["balance"]), report["version"]
        )

    handlers: dict[str, Handler] = {
        SETTLED: one_at_a_time(settled),
        FAILED: one_at_a_time(failed),
        COLLECTION_FAILED: one_at_a_time(collection_failed),
        MANDATE_CHANGED: one_at_a_time(mandate_changed),
        CREDIT_BALANCE: one_at_a_time(credit_balance),
    }
    return OutboxRelay(settlements.sessions, Outbox(outbox), handlers, settlements.clock)
