"""Services and plans."""

from invoicing_svc.adapters.catalog_store import CatalogStore
from invoicing_svc.domain.model import Plan, Service
from invoicing_svc.domain.plan_versions import NewPrices, next_version
from invoicing_svc.domain.plans import (
    PlanChange,
    PlanTerms,
    changed_plan,
    entitlements_changed,
    require_name,
    validate_entitlements,
    validate_terms,
)
from invoicing_svc.domain.trials import validate_trial
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.errors import InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.ids import new_id

MAX_DESCRIPTION = 2000


async def create_service(
    invoicing: Invoicing, service: Service, request: RequestKey | None
) -> Service:
    require_name(service.name, "service.name")
    if len(service.description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"service.description is longer than {MAX_DESCRIPTION} characters",
            field="service.description",
        )
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, service.merchant_id, request)
        if first_id is not None:
            return await _service(uow.catalog, service.merchant_id, first_id)
        await uow.catalog.add_service(service)
        await uow.idempotency.remember(uow.session, service.merchant_id, request, service.id)
        await uow.commit()
    return service


async def _service(catalog: CatalogStore, merchant_id: str, service_id: str) -> Service:
    found = await catalog.service(merchant_id, service_id)
    if found is None:
        raise NotFound(f"service {service_id} not found", field="id")
    return found


async def get_service(invoicing: Invoicing, merchant_id: str, service_id: str) -> Service:
    async with invoicing.unit_of_work() as uow:
        return await _service(uow.catalog, merchant_id, service_id)


async def list_services(
    invoicing: Invoicing, merchant_id: str, size: int, token: str
) -> tuple[list[Service], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.catalog.services(
            merchant_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda s: (s.create_time, s.id))


async def create_plan(invoicing: Invoicing, plan: Plan, request: RequestKey | None) -> Plan:
    """Stores a plan of an existing service of the merchant. Its prices never change afterwards."""
    require_name(plan.name, "plan.name")
    validate_terms(
        PlanTerms(
            plan.pricing_type, plan.amount, plan.charges, plan.interval_count, plan.prepaid_only
        )
    )
    validate_entitlements(plan.features, plan.limits)
    validate_trial(plan)
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, plan.merchant_id, request)
        if first_id is not None:
            stored = await uow.catalog.plan(plan.merchant_id, first_id)
            assert stored is not None
            return stored
        if await uow.catalog.service(plan.merchant_id, plan.service_id) is None:
            raise NotFound(f"service {plan.service_id} not found", field="plan.service_id")
        await uow.catalog.add_plan(plan)
        await uow.idempotency.remember(uow.session, plan.merchant_id, request, plan.id)
        await uow.commit()
    return plan


async def required_plan(
    uow: InvoicingUnitOfWork, merchant_id: str, plan_id: str, field: str
) -> Plan:
    """The merchant's plan; NOT_FOUND naming `field` when it is unknown or another's."""
    plan = await uow.catalog.plan(merchant_id, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found", field=field)
    return plan


async def get_plan(invoicing: Invoicing, merchant_id: str, plan_id: str) -> Plan:
    async with invoicing.unit_of_work() as uow:
        plan = await uow.catalog.plan(merchant_id, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found", field="id")
    return plan


async def update_plan(
    invoicing: Invoicing, merchant_id: str, plan_id: str, change: PlanChange
) -> Plan:
    """Changes what of a plan may change; prices never do. The usage ceiling bounds the mandates
    the checkout proposes from now on, never what is billed. New features or limits reach
    metering for every subscription of the plan not canceled: in this transaction each one's
    version goes up and its push is written to the outbox (metering keeps only newer versions)."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        # Locked: changes of one plan take turns, and a subscription started on it meanwhile
        # is either bumped here or reads the new entitlements.
        plan = await uow.catalog.plan(merchant_id, plan_id, lock=True)
        if plan is None:
            raise NotFound(f"plan {plan_id} not found", field="plan.id")
        changed = changed_plan(plan, change)
        await uow.catalog.update_plan(changed)
        if entitlements_changed(plan, changed):
            for subscription in await uow.subscriptions.bump_versions_of_plan(merchant_id, plan_id):
                await uow.subscription_changed(subscription, now)
        await uow.commit()
    return changed


async def create_plan_version(
    invoicing: Invoicing,
    merchant_id: str,
    plan_id: str,
    prices: NewPrices,
    request: RequestKey | None,
) -> Plan:
    """The next version of the plan (its latest), with new prices; its subscriptions stay on
    their version until migrated (plan_versions). Versions of one plan are made in turn: the
    plan is locked."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        if first_id is not None:
            stored = await uow.catalog.plan(merchant_id, first_id)
            assert stored is not None
            return stored
        plan = await uow.catalog.plan(merchant_id, plan_id, lock=True)
        if plan is None:
            raise NotFound(f"plan {plan_id} not found", field="plan_id")
        version = next_version(plan, prices, plan_id=new_id("plan"), now=now)
        await uow.catalog.add_plan(version)
        await uow.catalog.supersede(plan, version)
        await uow.idempotency.remember(uow.session, merchant_id, request, version.id)
        await uow.commit()
    return version


async def list_plans(
    invoicing: Invoicing, merchant_id: str, service_id: str, size: int, token: str
) -> tuple[list[Plan], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.catalog.plans(
            merchant_id, service_id or None, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda p: (p.create_time, p.id))
