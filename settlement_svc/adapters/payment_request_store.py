"""Payment requests, and the confirmed settlement that paid each."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.database import lock_name
from settlement_svc.adapters.tables import PaymentRequestRow, SettlementRow
from settlement_svc.domain.model import SettlementStatus
from settlement_svc.domain.payment_requests import PaymentRequest


def _request(row: PaymentRequestRow) -> PaymentRequest:
    return PaymentRequest(
        reference_hash=row.reference_hash,
        merchant_id=row.merchant_id,
        invoice_id=row.invoice_id or "",
        checkout_session_id=row.checkout_session_id or "",
        user_id=row.user_id,
        amount=row.amount,
        payee=row.payee_wallet_address,
        token=row.token_address,
        chain_id=row.chain_id,
        create_time=row.create_time,
        expire_time=row.expire_time,
    )


class PaymentRequestStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_payable(self, payable_id: str) -> None:
        """Serializes issuing requests for one invoice or checkout session, to the end of the
        transaction, so two callers at once issue one request."""
        await lock_name(self._session, f"payment_request:{payable_id}")

    async def add(self, request: PaymentRequest) -> None:
        self._session.add(
            PaymentRequestRow(
                reference_hash=request.reference_hash,
                merchant_id=request.merchant_id,
                invoice_id=request.invoice_id or None,
                checkout_session_id=request.checkout_session_id or None,
                user_id=request.user_id,
                amount=request.amount,
                payee_wallet_address=request.payee,
                token_address=request.token,
                chain_id=request.chain_id,
                create_time=request.create_time,
                expire_time=request.expire_time,
            )
        )
        await self._session.flush()

    async def latest(
        self, merchant_id: str, invoice_id: str, checkout_session_id: str
    ) -> PaymentRequest | None:
        """The payable's newest request, if it has one."""
        column = (
            PaymentRequestRow.invoice_id if invoice_id else PaymentRequestRow.checkout_session_id
        )
        row = await self._session.scalar(
            select(PaymentRequestRow)
            .where(
                PaymentRequestRow.merchant_id == merchant_id,
                column == (invoice_id or checkout_session_id),
            )
            .order_by(PaymentRequestRow.create_time.desc())
            .limit(1)
        )
        return _request(row) if row else None

    async def invoice_owner(self, invoice_id: str) -> str | None:
        """The merchant of an invoice a request was issued for."""
        owner: str | None = await self._session.scalar(
            select(PaymentRequestRow.merchant_id)
            .where(PaymentRequestRow.invoice_id == invoice_id)
            .limit(1)
        )
        return owner

    async def confirmed_settlement(self, invoice_id: str, checkout_session_id: str) -> str | None:
        """The confirmed settlement of the payable, whichever way it was paid (one at most)."""
        column = SettlementRow.invoice_id if invoice_id else SettlementRow.checkout_session_id
        found: str | None = await self._session.scalar(
            select(SettlementRow.id).where(
                column == (invoice_id or checkout_session_id),
                SettlementRow.status == SettlementStatus.CONFIRMED.value,
            )
        )
        return found

    async def by_reference(self, reference_hashes: Sequence[str]) -> dict[str, PaymentRequest]:
        """The requests with these reference hashes (nonces seen on chain), across merchants."""
        if not reference_hashes:
            return {}
        rows = await self._session.scalars(
            select(PaymentRequestRow).where(PaymentRequestRow.reference_hash.in_(reference_hashes))
        )
        return {row.reference_hash: _request(row) for row in rows}
