"""Invoicing's calls to metering: usage summaries, and the subscription and invoice replicas."""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from invoicing_svc.adapters.batch_calls import per_call
from invoicing_svc.domain.credits import PrepaidAllowance
from invoicing_svc.domain.entitlements import UsageLimit
from invoicing_svc.domain.model import Invoice, Plan, Subscription
from invoicing_svc.domain.periods import BilledUsage, billable_end
from invoicing_svc.domain.plans import usage_charges
from pricing.messages import charge_to_proto
from service_kit.backend_calls import answer_of
from service_kit.channels import open_channel
from service_kit.credentials import ServiceCredentials
from service_kit.decimals import format_decimal
from service_kit.proto_time import to_timestamp
from service_kit.tenancy import MERCHANT_METADATA_KEY

# The end of a window open to the future: the latest time a protobuf Timestamp holds.
_END_OF_USAGE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _limit(limit: UsageLimit) -> pb.UsageLimit:
    return pb.UsageLimit(
        event_key=limit.event_key,
        quantity=format_decimal(limit.quantity),
        enforcement=pb.LimitEnforcement.Value(f"LIMIT_ENFORCEMENT_{limit.enforcement.value}"),
    )


def _state(
    subscription: Subscription, plan: Plan, allowance: PrepaidAllowance | None
) -> pb.SubscriptionState:
    """The replica metering keeps of a subscription, with its plan's entitlements and, when the
    plan is prepaid-only, its allowance."""
    if plan.id != subscription.plan_id:
        raise ValueError(f"plan {plan.id} is not subscription {subscription.id}'s")
    if plan.prepaid_only != (allowance is not None):
        raise ValueError(f"subscription {subscription.id}: an allowance goes with prepaid-only")
    state = pb.SubscriptionState(
        subscription_id=subscription.id,
        service_id=subscription.service_id,
        user_id=subscription.user_id,
        status=pb.SubscriptionStatus.Value(f"SUBSCRIPTION_STATUS_{subscription.status.value}"),
        current_period_start=to_timestamp(subscription.current_period_start),
        current_period_end=to_timestamp(subscription.current_period_end),
        version=subscription.version,
        features=plan.features,
        limits=[_limit(limit) for limit in plan.limits],
    )
    if subscription.test_clock_time is not None:
        state.test_clock_time.CopyFrom(to_timestamp(subscription.test_clock_time))
    if (end := billable_end(subscription)) is not None:
        state.end_time.CopyFrom(to_timestamp(end))
    if allowance is not None:
        state.prepaid.CopyFrom(
            pb.PrepaidAllowance(
                credits=f"{allowance.credits:f}",
                since=to_timestamp(allowance.since),
                charges=[charge_to_proto(charge) for charge in usage_charges(plan)],
            )
        )
    return state


class MeteringClient:
    def __init__(
        self, address: str, credentials: ServiceCredentials, deadline_seconds: float
    ) -> None:
        self._channel = open_channel(address, credentials)
        self._stub = metering_pb2_grpc.MeteringServiceStub(self._channel)
        self._deadline = deadline_seconds

    def _metadata(self, merchant_id: str) -> tuple[tuple[str, str]]:
        return ((MERCHANT_METADATA_KEY, merchant_id),)

    async def push_subscription(
        self, subscription: Subscription, plan: Plan, allowance: PrepaidAllowance | None
    ) -> None:
        """The subscription's state, its plan's entitlements and its prepaid allowance (for a
        prepaid-only plan). Read the plan and the credits after the subscription: a change of
        either raises the subscription's version in its own transaction, so what is read later
        is never older than the version sent."""
        await answer_of(
            self._stub.UpsertSubscriptionState(
                pb.UpsertSubscriptionStateRequest(state=_state(subscription, plan, allowance)),
                metadata=self._metadata(subscription.merchant_id),
                timeout=self._deadline,
            ),
            "metering",
        )

    async def push_subscriptions(
        self,
        subscriptions: Sequence[Subscription],
        plans: Mapping[str, Plan],
        allowances: Mapping[str, PrepaidAllowance],
    ) -> None:
        """The states of many subscriptions (`plans` holds their plans by id, `allowances` the
        prepaid-only ones' allowances by subscription id, both read after them), in one call per
        merchant (and 1,000)."""

        async def push(merchant_id: str, chunk: list[Subscription]) -> None:
            states = [_state(s, plans[s.plan_id], allowances.get(s.id)) for s in chunk]
            await answer_of(
                self._stub.BatchUpsertSubscriptionStates(
                    pb.BatchUpsertSubscriptionStatesRequest(states=states),
                    metadata=self._metadata(merchant_id),
                    timeout=self._deadline,
                ),
                "metering",
            )

        await asyncio.gather(*(push(m, chunk) for m, chunk in per_call(subscriptions)))

    async def period_usages(self, windows: Sequence[BilledUsage]) -> list[Mapping[str, Decimal]]:
        """Per window, in order, each event key's aggregate over it, per its meter (SUM without
        one); one call per merchant (and 1,000)."""

        async def read(merchant_id: str, chunk: list[BilledUsage]) -> None:
            response = await answer_of(
                self._stub.BatchGetUsageSummaries(
                    pb.BatchGetUsageSummariesRequest(
                        requests=[
                            pb.GetUsageSummaryRequest(
                                subscription_id=w.subscription_id,
                                start_time=to_timestamp(w.start),
                                end_time=to_timestamp(w.end or _END_OF_USAGE),
                            )
                            for w in chunk
                        ]
                    ),
                    metadata=self._metadata(merchant_id),
                    timeout=self._deadline,
                ),
                "metering",
            )
            for window, answer in zip(chunk, response.responses, strict=True):
                usages[id(window)] = {
                    summary.event_key: Decimal(summary.value) for summary in answer.summaries
                }

        # By window object: a subscription whose plan changed has a window per part.
        usages: dict[int, Mapping[str, Decimal]] = {}
        await asyncio.gather(*(read(m, chunk) for m, chunk in per_call(windows)))
        return [usages[id(w)] for w in windows]

    async def push_invoices(self, invoices: Sequence[Invoice]) -> None:
        """References to the invoices, so events may be linked to them; one call per merchant
        (and 1,000)."""

        async def push(merchant_id: str, chunk: list[Invoice]) -> None:
            await answer_of(
                self._stub.BatchUpsertInvoiceReferences(
                    pb.BatchUpsertInvoiceReferencesRequest(
                        references=[
                            pb.InvoiceReference(
                                invoice_id=i.id, service_id=i.service_id, user_id=i.user_id
                            )
                            for i in chunk
                        ]
                    ),
                    metadata=self._metadata(merchant_id),
                    timeout=self._deadline,
                ),
                "metering",
            )

        await asyncio.gather(*(push(m, chunk) for m, chunk in per_call(invoices)))

    async def close(self) -> None:
        await self._channel.close()
