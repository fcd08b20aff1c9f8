"""Prepaid credits: grants, applications and their uses, and each subscriber's credit version.

Every change of a subscriber's credits first locks its credit account row (`lock`), in one
order, so that changes of one subscriber's grants never interleave and never deadlock.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.database import lock_name
from settlement_svc.adapters.tables import (
    CreditAccountRow,
    CreditApplicationRow,
    CreditGrantRow,
    CreditUseRow,
    TopUpRow,
)
from settlement_svc.domain.credit_grants import (
    CreditApplication,
    CreditGrant,
    CreditSource,
    TopUp,
    Use,
)


def _grant(row: CreditGrantRow) -> CreditGrant:
    return CreditGrant(
        id=row.id,
        merchant_id=row.merchant_id,
        user_id=row.user_id,
        source=CreditSource(row.source),
        amount=row.amount,
        remaining=row.remaining,
        priority=row.priority,
        expire_time=row.expire_time,
        description=row.description,
        reference=row.reference,
        create_time=row.create_time,
        expired_amount=row.expired_amount,
    )


def _row(grant: CreditGrant, request_id: str) -> dict[str, object]:
    return {
        "id": grant.id,
        "merchant_id": grant.merchant_id,
        "user_id": grant.user_id,
        "source": grant.source.value,
        "amount": grant.amount,
        "remaining": grant.remaining,
        "expired_amount": grant.expired_amount,
        "priority": grant.priority,
        "expire_time": grant.expire_time,
        "description": grant.description,
        "reference": grant.reference,
        "request_id": request_id,
        "create_time": grant.create_time,
    }


class CreditGrantStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, accounts: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Locks the (merchant id, user id) credit accounts until commit and counts a change of
        each; answers each one's new version."""
        ordered = sorted(set(accounts))
        if not ordered:
            return {}
        table = cast(Table, CreditAccountRow.__table__)
        # Many rows as parameters of one statement, compiled once.
        rows = await self._session.execute(
            insert(table)
            .on_conflict_do_update(
                index_elements=["merchant_id", "user_id"],
                set_={"version": table.c.version + 1},
            )
            .returning(table.c.merchant_id, table.c.user_id, table.c.version),
            [{"merchant_id": m, "user_id": u, "version": 1} for m, u in ordered],
        )
        return {(m, u): version for m, u, version in rows}

    async def grants_of(self, accounts: Iterable[tuple[str, str]]) -> list[CreditGrant]:
        """The grants of these (merchant id, user id) with something left."""
        wanted = sorted(set(accounts))
        if not wanted:
            return []
        rows = await self._session.scalars(
            select(CreditGrantRow).where(
                tuple_(CreditGrantRow.merchant_id, CreditGrantRow.user_id).in_(wanted),
                CreditGrantRow.remaining > 0,
            )
        )
        return [_grant(row) for row in rows]

    async def by_ids(self, grant_ids: Sequence[str]) -> list[CreditGrant]:
        if not grant_ids:
            return []
        rows = await self._session.scalars(
            select(CreditGrantRow).where(CreditGrantRow.id.in_(sorted(set(grant_ids))))
        )
        return [_grant(row) for row in rows]

    async def by_request(self, merchant_id: str, request_id: str) -> CreditGrant | None:
        row = await self._session.scalar(
            select(CreditGrantRow).where(
                CreditGrantRow.merchant_id == merchant_id, CreditGrantRow.request_id == request_id
            )
        )
        return None if row is None else _grant(row)

    async def add(self, grants: Sequence[CreditGrant], request_id: str = "") -> list[str]:
        """Stores new grants; one of a request id, or of a payment, granted before is left out.
        Returns the ids stored."""
        if not grants:
            return []
        table = cast(Table, CreditGrantRow.__table__)
        inserted = await self._session.execute(
            insert(table).on_conflict_do_nothing().returning(table.c.id),
            [_row(grant, request_id) for grant in grants],
        )
        return list(inserted.scalars())

    async def save_left(self, grants: Iterable[CreditGrant]) -> None:
        """Stores what each grant has left and has had written off."""
        table = cast(Table, CreditGrantRow.__table__)
        values = [
            {"grant_id": g.id, "left": g.remaining, "written_off": g.expired_amount} for g in grants
        ]
        if values:
            await self._session.execute(
                update(table)
                .where(table.c.id == bindparam("grant_id"))
                .values(remaining=bindparam("left"), expired_amount=bindparam("written_off")),
                values,
            )

    async def applications(
        self, merchant_id: str, keys: Sequence[str] = (), invoice_ids: Sequence[str] = ()
    ) -> dict[str, CreditApplication]:
        """The applications of these keys, or of these invoices, with their uses; by key."""
        if keys:
            condition = CreditApplicationRow.key.in_(keys)
        elif invoice_ids:
            condition = CreditApplicationRow.invoice_id.in_(invoice_ids)
        else:
            return {}
        rows = list(
            await self._session.scalars(
                select(CreditApplicationRow).where(
                    CreditApplicationRow.merchant_id == merchant_id, condition
                )
            )
        )
        if not rows:
            return {}
        uses: defaultdict[str, list[Use]] = defaultdict(list)
        for use in await self._session.scalars(
            select(CreditUseRow)
            .where(
                CreditUseRow.merchant_id == merchant_id,
                CreditUseRow.key.in_([row.key for row in rows]),
            )
            .order_by(CreditUseRow.key, CreditUseRow.position)
        ):
            uses[use.key].append(Use(use.grant_id, use.amount))
        return {
            row.key: CreditApplication(
                row.key, row.invoice_id, row.user_id, row.amount, tuple(uses[row.key])
            )
            for row in rows
        }

    async def save_applications(
        self, merchant_id: str, applications: Sequence[CreditApplication], now: datetime
    ) -> None:
        """Stores each application and its uses, as new or in place of what was stored."""
        if not applications:
            return
        table = cast(Table, CreditApplicationRow.__table__)
        statement = insert(table)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["merchant_id", "key"],
                set_={
                    "invoice_id": statement.excluded.invoice_id,
                    "amount": statement.excluded.amount,
                    "update_time": statement.excluded.update_time,
                },
            ),
            [
                {
                    "merchant_id": merchant_id,
                    "key": a.key,
                    "invoice_id": a.invoice_id,
                    "user_id": a.user_id,
                    "amount": a.amount,
                    "update_time": now,
                }
                for a in applications
            ],
        )
        uses = [
            {
                "merchant_id": merchant_id,
                "key": a.key,
                "grant_id": use.grant_id,
                "position": position,
                "amount": use.amount,
            }
            for a in applications
            for position, use in enumerate(a.uses)
        ]
        if uses:
            uses_statement = insert(cast(Table, CreditUseRow.__table__))
            await self._session.execute(
                uses_statement.on_conflict_do_update(
                    index_elements=["merchant_id", "key", "grant_id"],
                    set_={"amount": uses_statement.excluded.amount},
                ),
                uses,
            )

    async def add_top_ups(self, top_ups: Sequence[TopUp]) -> None:
        """Remembers top-up invoices the ledger recorded (each once)."""
        if not top_ups:
            return
        table = cast(Table, TopUpRow.__table__)
        await self._session.execute(
            insert(table).on_conflict_do_nothing(),
            [
                {
                    "merchant_id": t.merchant_id,
                    "invoice_id": t.invoice_id,
                    "user_id": t.user_id,
                    "amount": t.amount,
                }
                for t in top_ups
            ],
        )

    async def lock_top_ups(self, invoices: Collection[tuple[str, str]]) -> None:
        """Until commit, no other transaction records or funds these (merchant id, invoice id)
        top-ups: taken, in one order, before anything else those transactions lock."""
        for merchant_id, invoice_id in sorted(set(invoices)):
            await lock_name(self._session, f"settlement.top_up:{merchant_id}:{invoice_id}")

    async def top_ups(self, invoices: Collection[tuple[str, str]]) -> list[TopUp]:
        """The top-ups among these (merchant id, invoice id)."""
        if not invoices:
            return []
        rows = await self._session.scalars(
            select(TopUpRow).where(
                tuple_(TopUpRow.merchant_id, TopUpRow.invoice_id).in_(sorted(invoices))
            )
        )
        return [TopUp(r.merchant_id, r.invoice_id, r.user_id, r.amount) for r in rows]

    async def page(
        self, merchant_id: str, user_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[CreditGrant]:
        """Up to `limit` grants of the subscriber, newest first, after `after`."""
        query = select(CreditGrantRow).where(
            CreditGrantRow.merchant_id == merchant_id, CreditGrantRow.user_id == user_id
        )
        if after is not None:
            query = query.where(
                tuple_(CreditGrantRow.create_time, CreditGrantRow.id) < tuple_(*after)
            )
        rows = await self._session.scalars(
            query.order_by(CreditGrantRow.create_time.desc(), CreditGrantRow.id.desc()).limit(limit)
        )
        return [_grant(row) for row in rows]

    async def expired_accounts(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(merchant id, user id) of up to `limit` subscribers with an expired grant that has
        something left to write off."""
        rows = await self._session.execute(
            select(CreditGrantRow.merchant_id, CreditGrantRow.user_id)
            .where(CreditGrantRow.remaining > 0, CreditGrantRow.expire_time <= now)
            .distinct()
            .limit(limit)
        )
        return [(m, u) for m, u in rows]

    async def remaining_by_user(self, merchant_id: str) -> Mapping[str, Decimal]:
        """What each subscriber's grants have left, in all (reconciliation)."""
        rows = await self._session.execute(
            select(CreditGrantRow.user_id, func.sum(CreditGrantRow.remaining))
            .where(CreditGrantRow.merchant_id == merchant_id)
            .group_by(CreditGrantRow.user_id)
        )
        return {user_id: total for user_id, total in rows}
