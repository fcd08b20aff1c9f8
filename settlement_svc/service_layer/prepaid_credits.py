"""Prepaid credits: grants, spending them on invoices as they are finalized, giving back what a
voided invoice spent, and writing off what expired grants had left (`domain.credit_grants`).

Every change locks the subscriber's credit account first, posts its ledger entries, and tells
invoicing the new balance through the outbox, all in one transaction.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import structlog

from service_kit import pagination
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import InvalidArgument
from service_kit.ids import new_id
from settlement_svc.domain import credit_grants, formats, ledger
from settlement_svc.domain.credit_grants import (
    MAX_DESCRIPTION,
    MAX_PRIORITY,
    CreditApplication,
    CreditBalance,
    CreditGrant,
    CreditSource,
    Use,
)
from settlement_svc.domain.ledger import ZERO, PostingKind
from settlement_svc.service_layer.unit_of_work import (
    CREDIT_BALANCE,
    Settlements,
    SettlementUnitOfWork,
)

log = structlog.get_logger()
MAX_APPLICATIONS_PER_CALL = 1000
MAX_KEY = 200
MAX_REQUEST_ID = 255
# Subscribers whose expired grants one pass writes off.
EXPIRY_BATCH = 200


@dataclass(frozen=True)
class GrantTerms:
    user_id: str
    amount: str
    priority: int
    expire_time: datetime | None
    description: str
    request_id: str


@dataclass(frozen=True)
class ReportedBalance:
    """A subscriber's balance as a report to invoicing carries it."""

    user_id: str
    balance: Decimal
    version: int


@dataclass(frozen=True)
class ApplicationRequest:
    key: str
    invoice_id: str
    user_id: str
    amount: str


@dataclass(frozen=True)
class Funding:
    """USDC a payment left beyond what it owed, or a paid top-up: a grant of the payer's
    subscriber."""

    merchant_id: str
    user_id: str
    amount: Decimal
    # The settlement or credit whose USDC it is; the invoice of a top-up.
    reference: str
    description: str
    source: CreditSource = CreditSource.PAYMENT


class _Books:
    """The grants of the locked accounts, as a transaction changes them, and its postings."""

    def __init__(self, grants: Iterable[CreditGrant]) -> None:
        self.grants: dict[str, CreditGrant] = {}
        # The grant ids of each (merchant id, user id): a call spends on up to 1,000 accounts.
        self._of_account: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.changed: set[str] = set()
        self.postings: defaultdict[str, list[ledger.Posting]] = defaultdict(list)
        for grant in grants:
            self.add(grant)

    def add(self, grant: CreditGrant) -> None:
        if grant.id not in self.grants:
            self._of_account[(grant.merchant_id, grant.user_id)].append(grant.id)
        self.grants[grant.id] = grant

    def of(self, merchant_id: str, user_id: str) -> list[CreditGrant]:
        return [self.grants[g] for g in self._of_account[(merchant_id, user_id)]]

    def move(self, uses: Sequence[Use], sign: int) -> None:
        for use in uses:
            grant = self.grants[use.grant_id]
            self.grants[use.grant_id] = replace(
                grant, remaining=grant.remaining + sign * use.amount
            )
            self.changed.add(use.grant_id)

    def post(
        self, merchant_id: str, kind: PostingKind, reference: str, entries: list[ledger.Entry]
    ) -> None:
        self.postings[merchant_id].append(ledger.Posting(kind, reference, entries))

    async def save(self, uow: SettlementUnitOfWork, now: datetime) -> None:
        await uow.credit_grants.save_left(self.grants[g] for g in sorted(self.changed))
        for merchant_id, postings in sorted(self.postings.items()):
            await uow.journal.post_many(merchant_id, postings, now)


async def _lock(
    uow: SettlementUnitOfWork, accounts: Iterable[tuple[str, str]], missing: Sequence[str] = ()
) -> tuple[dict[tuple[str, str], int], _Books]:
    """Locks the accounts; answers their versions and their grants (with those of `missing`,
    grants that may have nothing left, read as well)."""
    versions = await uow.credit_grants.lock(accounts)
    grants = await uow.credit_grants.grants_of(versions)
    books = _Books(grants)
    for grant in await uow.credit_grants.by_ids(
        [grant_id for grant_id in missing if grant_id not in books.grants]
    ):
        books.add(grant)
    return versions, books


async def _report(
    uow: SettlementUnitOfWork,
    versions: dict[tuple[str, str], int],
    books: _Books,
    now: datetime,
) -> list[ReportedBalance]:
    """Tells invoicing each locked subscriber's balance, with its new version; returns them."""
    messages = []
    reported = []
    for (merchant_id, user_id), version in sorted(versions.items()):
        found = credit_grants.balance(books.of(merchant_id, user_id), now)
        payload = {"user_id": user_id, "balance": f"{found.balance:f}", "version": version}
        messages.append((merchant_id, payload))
        reported.append(ReportedBalance(user_id, found.balance, version))
    await uow.outbox.add_many(uow.session, CREDIT_BALANCE, messages, now)
    return reported


def _check_terms(terms: GrantTerms, now: datetime) -> Decimal:
    formats.reference(terms.user_id, "user_id")
    amount = parse_decimal(
        terms.amount, field="amount", max_places=6, max_value=MAX_AMOUNT, allow_zero=False
    )
    if not 0 <= terms.priority <= MAX_PRIORITY:
        raise InvalidArgument(f"priority must be 0-{MAX_PRIORITY}", field="priority")
    if terms.expire_time is not None and terms.expire_time <= now:
        raise InvalidArgument("expire_time must be in the future", field="expire_time")
    if len(terms.description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"description must be at most {MAX_DESCRIPTION} characters", field="description"
        )
    if len(terms.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(
            f"request_id must be at most {MAX_REQUEST_ID} characters", field="request_id"
        )
    return amount


async def create_grant(
    settlements: Settlements, merchant_id: str, terms: GrantTerms
) -> CreditGrant:
    """Promotional credits for one subscriber; the same request id again answers the first
    grant."""
    now = settlements.clock.now()
    amount = _check_terms(terms, now)
    async with settlements.unit_of_work() as uow:
        if terms.request_id:
            earlier = await uow.credit_grants.by_request(merchant_id, terms.request_id)
            if earlier is not None:
                return earlier
        versions, books = await _lock(uow, [(merchant_id, terms.user_id)])
        grant = CreditGrant(
            id=new_id("crg"),
            merchant_id=merchant_id,
            user_id=terms.user_id,
            source=CreditSource.PROMOTIONAL,
            amount=amount,
            remaining=amount,
            priority=terms.priority,
            expire_time=terms.expire_time,
            description=terms.description,
            reference="",
            create_time=now,
        )
        if not await uow.credit_grants.add([grant], terms.request_id):
            # The same request id, granted by a concurrent call in the meantime.
            earlier = await uow.credit_grants.by_request(merchant_id, terms.request_id)
            assert earlier is not None
            return earlier
        books.add(grant)
        books.post(
            merchant_id,
            PostingKind.CREDIT_GRANT,
            grant.id,
            ledger.grant_posting(terms.user_id, amount),
        )
        await books.save(uow, now)
        await _report(uow, versions, books, now)
        await uow.commit()
    log.info("credits.granted", grant=grant.id, amount=f"{amount:f}")
    return grant


async def fund(uow: SettlementUnitOfWork, fundings: Sequence[Funding], now: datetime) -> None:
    """Grants of what payments left beyond what they owed, in the transaction that posts those
    payments (their ledger postings credit the subscribers' credit accounts already)."""
    if fundings:
        versions, books = await _lock(uow, [(f.merchant_id, f.user_id) for f in fundings])
        await _grant_funds(uow, versions, books, fundings, now)


async def fund_top_ups(
    uow: SettlementUnitOfWork, paid: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Grants what the top-ups among these paid (merchant id, invoice id) sold, once per
    top-up, in the transaction that posts their payments or records the top-up invoices. The
    caller holds the top-ups' locks (`lock_top_ups`)."""
    top_ups = await uow.credit_grants.top_ups(paid)
    if not top_ups:
        return
    versions, books = await _lock(uow, [(t.merchant_id, t.user_id) for t in top_ups])
    fundings = [
        Funding(
            t.merchant_id,
            t.user_id,
            t.amount,
            t.invoice_id,
            f"top-up {t.invoice_id}",
            CreditSource.TOP_UP,
        )
        for t in top_ups
    ]
    for grant in await _grant_funds(uow, versions, books, fundings, now):
        books.post(
            grant.merchant_id,
            PostingKind.CREDIT_TOP_UP,
            grant.reference,
            ledger.top_up_posting(grant.user_id, grant.amount),
        )
    await books.save(uow, now)


async def _grant_funds(
    uow: SettlementUnitOfWork,
    versions: dict[tuple[str, str], int],
    books: _Books,
    fundings: Sequence[Funding],
    now: datetime,
) -> list[CreditGrant]:
    """Stores a grant of each funding not granted before; reports the balances. Returns the
    grants stored."""
    grants = [
        CreditGrant(
            id=new_id("crg"),
            merchant_id=f.merchant_id,
            user_id=f.user_id,
            source=f.source,
            amount=f.amount,
            remaining=f.amount,
            priority=0,
            expire_time=None,
            description=f.description,
            reference=f.reference,
            create_time=now,
        )
        for f in fundings
    ]
    stored = set(await uow.credit_grants.add(grants))
    for grant in grants:
        if grant.id in stored:
            books.add(grant)
    await _report(uow, versions, books, now)
    return [g for g in grants if g.id in stored]


def _check_applications(applications: Sequence[ApplicationRequest]) -> list[Decimal]:
    if not 1 <= len(applications) <= MAX_APPLICATIONS_PER_CALL:
        raise InvalidArgument(
            f"between 1 and {MAX_APPLICATIONS_PER_CALL:,} applications are required",
            field="applications",
        )
    amounts, seen = [], set()
    for number, application in enumerate(applications):
        prefix = f"applications[{number}]."
        if not 1 <= len(application.key) <= MAX_KEY:
            raise InvalidArgument(f"key must be 1-{MAX_KEY} characters", field=f"{prefix}key")
        if application.key in seen:
            raise InvalidArgument(f"the key {application.key} appears twice", field=f"{prefix}key")
        seen.add(application.key)
        formats.reference(application.invoice_id, f"{prefix}invoice_id")
        formats.reference(application.user_id, f"{prefix}user_id")
        amounts.append(
            parse_decimal(
                application.amount,
                field=f"{prefix}amount",
                max_places=6,
                max_value=MAX_AMOUNT,
                allow_zero=False,
            )
        )
    return amounts


def _lowered(
    books: _Books, merchant_id: str, application: CreditApplication, amount: Decimal
) -> CreditApplication:
    """The application spending `amount` instead: the rest goes back to its grants."""
    back = credit_grants.give_back(application.uses, application.amount - amount)
    books.move(back, +1)
    returned = {use.grant_id: use.amount for use in back}
    uses = tuple(
        Use(u.grant_id, u.amount - returned.get(u.grant_id, ZERO)) for u in application.uses
    )
    books.post(
        merchant_id,
        PostingKind.CREDIT_RELEASED,
        f"{application.key}:{amount:f}",
        ledger.released_posting(application.user_id, application.amount - amount),
    )
    return replace(application, amount=amount, uses=uses)


async def apply_credits(
    settlements: Settlements, merchant_id: str, applications: Sequence[ApplicationRequest]
) -> tuple[list[Decimal], list[ReportedBalance]]:
    """Spends each subscriber's credits on each invoice, up to its amount, in one transaction;
    a key spent on before answers what it spent, lowered to the amount asked. Returns what was
    spent on each, and each subscriber's balance after (as reported to invoicing)."""
    amounts = _check_applications(applications)
    now = settlements.clock.now()
    async with settlements.unit_of_work() as uow:
        keys = [a.key for a in applications]
        earlier = await uow.credit_grants.applications(merchant_id, keys=keys)
        spent_from = [u.grant_id for a in earlier.values() for u in a.uses]
        versions, books = await _lock(
            uow, [(merchant_id, a.user_id) for a in applications], spent_from
        )
        saved: list[CreditApplication] = []
        for asked, amount in zip(applications, amounts, strict=True):
            application = earlier.get(asked.key)
            if application is None:
                uses = credit_grants.spend(books.of(merchant_id, asked.user_id), amount, now)
                books.move(uses, -1)
                application = CreditApplication(
                    asked.key,
                    asked.invoice_id,
                    asked.user_id,
                    sum((u.amount for u in uses), ZERO),
                    tuple(uses),
                )
                if application.amount > 0:
                    books.post(
                        merchant_id,
                        PostingKind.CREDIT_APPLIED,
                        asked.key,
                        ledger.applied_posting(asked.user_id, application.amount),
                    )
            elif application.amount > amount:
                application = _lowered(books, merchant_id, application, amount)
            saved.append(replace(application, invoice_id=asked.invoice_id))
        await uow.credit_grants.save_applications(merchant_id, saved, now)
        await books.save(uow, now)
        balances = await _report(uow, versions, books, now)
        await uow.commit()
    return [application.amount for application in saved], balances


async def release_voided(
    uow: SettlementUnitOfWork, merchant_id: str, invoice_ids: Sequence[str], now: datetime
) -> None:
    """Gives back what the finalization of these voided invoices spent, in the transaction that
    records their voids."""
    found = await uow.credit_grants.applications(merchant_id, invoice_ids=invoice_ids)
    spending = [a for a in found.values() if a.amount > 0]
    if not spending:
        return
    spent_from = [u.grant_id for a in spending for u in a.uses]
    versions, books = await _lock(uow, [(merchant_id, a.user_id) for a in spending], spent_from)
    released = [_lowered(books, merchant_id, a, ZERO) for a in spending]
    await uow.credit_grants.save_applications(merchant_id, released, now)
    await books.save(uow, now)
    await _report(uow, versions, books, now)


async def expire_grants(settlements: Settlements) -> int:
    """One pass: writes off what expired grants have left; answers how many were written off."""
    now = settlements.clock.now()
    async with settlements.unit_of_work() as uow:
        accounts = await uow.credit_grants.expired_accounts(now, EXPIRY_BATCH)
        if not accounts:
            return 0
        # Read again under the lock: a concurrent pass may have written them off.
        versions, books = await _lock(uow, accounts)
        expired = [g for g in books.grants.values() if g.remaining > 0 and g.expired(now)]
        for grant in expired:
            written_off = grant.expired_amount + grant.remaining
            books.grants[grant.id] = replace(grant, remaining=ZERO, expired_amount=written_off)
            books.changed.add(grant.id)
            books.post(
                grant.merchant_id,
                PostingKind.CREDIT_EXPIRED,
                f"{grant.id}:{written_off:f}",
                ledger.expired_posting(grant.user_id, grant.remaining),
            )
        await books.save(uow, now)
        await _report(uow, versions, books, now)
        await uow.commit()
    if expired:
        log.info("credits.expired", grants=len(expired))
    return len(expired)


async def list_grants(
    settlements: Settlements, merchant_id: str, user_id: str, size: int, token: str
) -> tuple[list[CreditGrant], str]:
    formats.reference(user_id, "user_id")
    limit = pagination.page_size(size)
    async with settlements.unit_of_work() as uow:
        found = await uow.credit_grants.page(
            merchant_id, user_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda g: (g.create_time, g.id))


async def balance(settlements: Settlements, merchant_id: str, user_id: str) -> CreditBalance:
    formats.reference(user_id, "user_id")
    async with settlements.unit_of_work() as uow:
        grants = await uow.credit_grants.grants_of([(merchant_id, user_id)])
    return credit_grants.balance(grants, settlements.clock.now())
