"""Migrating a plan version's subscriptions to another version, at their next period."""

from dataclasses import dataclass
from decimal import Decimal

from invoicing_svc.domain import plan_versions as rules
from invoicing_svc.domain.model import Plan, Subscription
from invoicing_svc.domain.periods import BilledUsage
from invoicing_svc.domain.plan_changes import scheduled
from invoicing_svc.service_layer.catalog import required_plan
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit import pagination

# Subscriptions per call: a migration of more goes page by page.
MAX_PAGE = 1000


@dataclass(frozen=True)
class Migration:
    """One subscription's migration: its next invoice on each version (priced on the current
    period's usage so far), and whether it moves."""

    subscription: Subscription
    current_amount: Decimal
    migrated_amount: Decimal
    outcome: rules.MigrationOutcome
    reason: str


async def migrate_subscriptions(
    invoicing: Invoicing,
    merchant_id: str,
    plan_id: str,
    *,
    to_plan_id: str,
    dry_run: bool,
    size: int,
    token: str,
) -> tuple[list[Migration], Plan, str]:
    """A page of the version's subscriptions (oldest first) moved to `to_plan_id` (default: the
    latest version) at their next period, each a plan change at the period's end with its
    `subscription.updated`; a canceled, paused or ending one is left (SKIPPED, with why). A
    `dry_run` changes nothing and answers the same. Returns the page, the target and the token
    of the next page."""
    limit = min(pagination.page_size(size), MAX_PAGE)
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        source = await required_plan(uow, merchant_id, plan_id, "plan_id")
        target = (
            await required_plan(uow, merchant_id, to_plan_id, "to_plan_id")
            if to_plan_id
            else await uow.catalog.latest_version(source)
        )
        rules.validate_target(source, target)
        found = await uow.subscriptions.subscriptions(
            merchant_id,
            service_id=None,
            user_id=None,
            plan_id=source.id,
            after=pagination.creation_position(token),
            limit=limit + 1,
            lock=not dry_run,
        )
        page, next_token = pagination.cut_page(found, limit, lambda s: (s.create_time, s.id))
        usages = await invoicing.metering.period_usages(
            [
                BilledUsage(merchant_id, s.id, s.current_period_start, s.current_period_end)
                for s in page
            ]
        )
        migrations = []
        for subscription, usage in zip(page, usages, strict=True):
            outcome, reason = rules.migration_outcome(subscription)
            migrations.append(
                Migration(
                    subscription,
                    rules.next_invoice_estimate(subscription, source, usage),
                    rules.next_invoice_estimate(subscription, target, usage),
                    outcome,
                    reason,
                )
            )
            if dry_run or outcome is not rules.MigrationOutcome.SCHEDULED:
                continue
            moved = scheduled(subscription, target)
            await uow.subscriptions.save_subscription(moved)
            await uow.subscription_changed(moved, now)
            await uow.emit(merchant_id, "subscription.updated", moved, now)
        await uow.commit()
    return migrations, target, next_token
