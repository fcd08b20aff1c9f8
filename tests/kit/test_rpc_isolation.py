"""Every RPC of the three services called with a second merchant's x-merchant-id on the first
one's objects: NOT_FOUND or empty, never the first one's data, and the first one's objects
unchanged. One probe per method of each service descriptor, so a new RPC needs its own."""

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.metering.v1 import metering_pb2 as mpb
from billing.settlement.v1 import settlement_pb2 as spb
from service_kit.proto_time import to_timestamp
from tests.conftest import TEST_START, Platform, register_payout_wallet
from tests.invoicing.conftest import Merchant

# Only in the owner's names and texts: it must never reach the other merchant.
MARKER = "owner-only-4c1e"
OTHER = (("x-merchant-id", "mer_isolation_other"),)
NOT_FOUND, EMPTY, REJECTED, HARMLESS = "NOT_FOUND", "empty", "rejected", "harmless"
# Not scoped to a merchant by design: it answers the owner's id and nothing else.
UNSCOPED = "unscoped"
# Metering's replica writes (called by invoicing only) refuse an id another merchant holds.
DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True)
class Owned:
    """The first merchant's objects, one of each kind."""

    merchant: Merchant
    service: ipb.Service
    plan: ipb.Plan
    subscription: ipb.Subscription
    session: ipb.CheckoutSession
    invoice: ipb.Invoice
    endpoint: ipb.WebhookEndpoint
    meter: mpb.Meter
    event: mpb.UsageEventInput
    event_id: str
    settlement: spb.Settlement
    # The owner's payout wallet.
    wallet: str
    alert: ipb.UsageAlert
    coupon: ipb.Coupon
    discount: ipb.Discount

    @property
    def account(self) -> str:
        return f"receivable:{self.subscription.user_id}"


Request = Callable[[Owned], Message]


def usage_of(o: Owned) -> mpb.GetUsageSummaryRequest:
    return mpb.GetUsageSummaryRequest(
        subscription_id=o.subscription.id,
        start_time=to_timestamp(TEST_START - timedelta(days=40)),
        end_time=to_timestamp(TEST_START + timedelta(days=40)),
    )


def summary(o: Owned) -> ipb.SettlementSummary:
    return ipb.SettlementSummary(
        settlement_id=o.settlement.id,
        invoice_id=o.invoice.id,
        amount_paid="3",
        failure_reason="NO_TRANSFER",
    )


def state(o: Owned) -> mpb.SubscriptionState:
    return mpb.SubscriptionState(
        subscription_id=o.subscription.id,
        service_id=o.service.id,
        user_id=o.subscription.user_id,
        status=mpb.SUBSCRIPTION_STATUS_CANCELED,
        current_period_start=o.subscription.current_period_start,
        current_period_end=o.subscription.current_period_end,
        version=1_000,
    )


def foreign_reference(o: Owned) -> mpb.InvoiceReference:
    """The owner's invoice id, claimed for another service and subscriber."""
    return mpb.InvoiceReference(
        invoice_id=o.invoice.id, service_id="svc_other", user_id="usr_other"
    )


def foreign_invoice(o: Owned) -> spb.RecordInvoiceRequest:
    """The owner's invoice id, recorded in the other merchant's ledger."""
    return spb.RecordInvoiceRequest(invoice_id=o.invoice.id, user_id="usr_other", amount="5")


PROBES: dict[str, dict[str, tuple[Request, str]]] = {
    "MeteringService": {
        "CreateMeter": (
            lambda o: mpb.CreateMeterRequest(
                meter=mpb.Meter(
                    service_id=o.service.id, event_key="tokens", aggregation=mpb.AGGREGATION_MAX
                )
            ),
            HARMLESS,
        ),
        "GetMeter": (lambda o: mpb.GetMeterRequest(id=o.meter.id), NOT_FOUND),
        "ListMeters": (lambda o: mpb.ListMetersRequest(service_id=o.service.id), EMPTY),
        "RecordUsageEvent": (lambda o: mpb.RecordUsageEventRequest(event=o.event), NOT_FOUND),
        "BatchRecordUsageEvents": (
            lambda o: mpb.BatchRecordUsageEventsRequest(events=[o.event]),
            REJECTED,
        ),
        "StreamUsageEvents": (lambda o: mpb.StreamUsageEventsRequest(event=o.event), REJECTED),
        "ListUsageEvents": (
            lambda o: mpb.ListUsageEventsRequest(subscription_id=o.subscription.id),
            EMPTY,
        ),
        "CancelUsageEvent": (
            lambda o: mpb.CancelUsageEventRequest(id=o.event_id, reason="mine"),
            NOT_FOUND,
        ),
        "GetUsageSummary": (
            usage_of,
            NOT_FOUND,
        ),
        "BatchGetUsageSummaries": (
            lambda o: mpb.BatchGetUsageSummariesRequest(requests=[usage_of(o)]),
            NOT_FOUND,
        ),
        "CheckEntitlement": (
            lambda o: mpb.CheckEntitlementRequest(
                subscription_id=o.subscription.id, event_key="tokens"
            ),
            NOT_FOUND,
        ),
        "BatchUpsertSubscriptionStates": (
            lambda o: mpb.BatchUpsertSubscriptionStatesRequest(states=[state(o)]),
            DENIED,
        ),
        "UpsertSubscriptionState": (
            lambda o: mpb.UpsertSubscriptionStateRequest(state=state(o)),
            DENIED,
        ),
        "UpsertInvoiceReference": (
            lambda o: mpb.UpsertInvoiceReferenceRequest(invoice=foreign_reference(o)),
            DENIED,
        ),
        "BatchUpsertInvoiceReferences": (
            lambda o: mpb.BatchUpsertInvoiceReferencesRequest(references=[foreign_reference(o)]),
            DENIED,
        ),
    },
    "InvoicingService": {
        "CreateService": (
            lambda o: ipb.CreateServiceRequest(service=ipb.Service(name="Mine")),
            HARMLESS,
        ),
        "GetService": (lambda o: ipb.GetServiceRequest(id=o.service.id), NOT_FOUND),
        "ListServices": (lambda o: ipb.ListServicesRequest(), EMPTY),
        "CreatePlan": (
            lambda o: ipb.CreatePlanRequest(
                plan=ipb.Plan(
                    service_id=o.service.id,
                    name="Mine",
                    pricing_type=ipb.PRICING_TYPE_FIXED_RECURRING,
                    billing_interval=ipb.BILLING_INTERVAL_MONTH,
                    amount="1",
                )
            ),
            NOT_FOUND,
        ),
        "GetPlan": (lambda o: ipb.GetPlanRequest(id=o.plan.id), NOT_FOUND),
        "UpdatePlan": (
            lambda o: ipb.UpdatePlanRequest(
                plan=ipb.Plan(id=o.plan.id, usage_ceiling="9"),
                update_mask=FieldMask(paths=["usage_ceiling"]),
            ),
            NOT_FOUND,
        ),
        "ListPlans": (lambda o: ipb.ListPlansRequest(service_id=o.service.id), EMPTY),
        "CreateCheckoutSession": (
            lambda o: ipb.CreateCheckoutSessionRequest(
                session=ipb.CheckoutSession(
                    plan_id=o.plan.id,
                    success_url="https://other.example/ok",
                    cancel_url="https://other.example/no",
                )
            ),
            NOT_FOUND,
        ),
        "GetCheckoutSession": (
            lambda o: ipb.GetCheckoutSessionRequest(id=o.session.id),
            NOT_FOUND,
        ),
        "CompleteCheckoutSession": (
            lambda o: ipb.CompleteCheckoutSessionRequest(id=o.session.id),
            NOT_FOUND,
        ),
        "ConfirmCheckoutPayment": (
            lambda o: ipb.ConfirmCheckoutPaymentRequest(
                id=o.session.id, settlement_id=o.settlement.id
            ),
            NOT_FOUND,
        ),
        "GetSubscription": (
            lambda o: ipb.GetSubscriptionRequest(id=o.subscription.id),
            NOT_FOUND,
        ),
        "ListSubscriptions": (
            lambda o: ipb.ListSubscriptionsRequest(service_id=o.service.id),
            EMPTY,
        ),
        "UpdateWebhookEndpoint": (
            lambda o: ipb.UpdateWebhookEndpointRequest(
                endpoint=ipb.WebhookEndpoint(id=o.endpoint.id, description="theirs"),
                update_mask=FieldMask(paths=["description"]),
            ),
            NOT_FOUND,
        ),
        "DisableWebhookEndpoint": (
            lambda o: ipb.DisableWebhookEndpointRequest(id=o.endpoint.id),
            NOT_FOUND,
        ),
        "EnableWebhookEndpoint": (
            lambda o: ipb.EnableWebhookEndpointRequest(id=o.endpoint.id),
            NOT_FOUND,
        ),
        "DeleteWebhookEndpoint": (
            lambda o: ipb.DeleteWebhookEndpointRequest(id=o.endpoint.id),
            NOT_FOUND,
        ),
        "RollWebhookEndpointSecret": (
            lambda o: ipb.RollWebhookEndpointSecretRequest(id=o.endpoint.id),
            NOT_FOUND,
        ),
        "SendTestWebhookEvent": (
            lambda o: ipb.SendTestWebhookEventRequest(endpoint_id=o.endpoint.id),
            NOT_FOUND,
        ),
        "RetryWebhookDelivery": (
            lambda o: ipb.RetryWebhookDeliveryRequest(
                endpoint_id=o.endpoint.id, delivery_id="whd_x"
            ),
            NOT_FOUND,
        ),
        "GetCustomer": (lambda o: ipb.GetCustomerRequest(id=o.session.user_id), NOT_FOUND),
        "ListCustomers": (
            lambda o: ipb.ListCustomersRequest(email=f"{MARKER}@example.com"),
            EMPTY,
        ),
        "GetCustomerAccess": (
            lambda o: ipb.GetCustomerAccessRequest(email=f"{MARKER}@example.com"),
            EMPTY,
        ),
        "CancelSubscription": (
            lambda o: ipb.CancelSubscriptionRequest(id=o.subscription.id),
            NOT_FOUND,
        ),
        "ChangeSubscriptionPlan": (
            lambda o: ipb.ChangeSubscriptionPlanRequest(id=o.subscription.id, plan_id=o.plan.id),
            NOT_FOUND,
        ),
        "PauseSubscription": (
            lambda o: ipb.PauseSubscriptionRequest(id=o.subscription.id),
            NOT_FOUND,
        ),
        "ResumeSubscription": (
            lambda o: ipb.ResumeSubscriptionRequest(id=o.subscription.id),
            NOT_FOUND,
        ),
        "CreatePlanVersion": (
            lambda o: ipb.CreatePlanVersionRequest(plan_id=o.plan.id, amount="2"),
            NOT_FOUND,
        ),
        "MigratePlanSubscriptions": (
            lambda o: ipb.MigratePlanSubscriptionsRequest(plan_id=o.plan.id, dry_run=True),
            NOT_FOUND,
        ),
        "CreateCoupon": (
            lambda o: ipb.CreateCouponRequest(
                coupon=ipb.Coupon(name="Mine", percent_off="10", duration=ipb.COUPON_DURATION_ONCE)
            ),
            HARMLESS,
        ),
        "GetCoupon": (lambda o: ipb.GetCouponRequest(id=o.coupon.id), NOT_FOUND),
        "ListCoupons": (lambda o: ipb.ListCouponsRequest(), EMPTY),
        "CreateDiscount": (
            lambda o: ipb.CreateDiscountRequest(
                coupon_id=o.coupon.id, subscription_id=o.subscription.id
            ),
            NOT_FOUND,
        ),
        "ListDiscounts": (
            lambda o: ipb.ListDiscountsRequest(subscription_id=o.subscription.id),
            EMPTY,
        ),
        "DeleteDiscount": (lambda o: ipb.DeleteDiscountRequest(id=o.discount.id), NOT_FOUND),
        "CreateInvoice": (
            lambda o: ipb.CreateInvoiceRequest(
                subscription_id=o.subscription.id, payment_plan_id=o.plan.id, amount="1"
            ),
            NOT_FOUND,
        ),
        "GetInvoice": (lambda o: ipb.GetInvoiceRequest(id=o.invoice.id), NOT_FOUND),
        "ListInvoices": (
            lambda o: ipb.ListInvoicesRequest(subscription_id=o.subscription.id),
            EMPTY,
        ),
        "FinalizeInvoice": (lambda o: ipb.FinalizeInvoiceRequest(id=o.invoice.id), NOT_FOUND),
        "VoidInvoice": (lambda o: ipb.VoidInvoiceRequest(id=o.invoice.id), NOT_FOUND),
        "MarkInvoiceUncollectible": (
            lambda o: ipb.MarkInvoiceUncollectibleRequest(id=o.invoice.id),
            NOT_FOUND,
        ),
        "MarkInvoicePaid": (
            lambda o: ipb.MarkInvoicePaidRequest(id=o.invoice.id, settlement_id=o.settlement.id),
            NOT_FOUND,
        ),
        "ReportSettlementFailure": (
            lambda o: ipb.ReportSettlementFailureRequest(settlement=summary(o)),
            HARMLESS,
        ),
        "ReportPaymentAttemptFailure": (
            lambda o: ipb.ReportPaymentAttemptFailureRequest(
                invoice_id=o.invoice.id,
                attempt_number=1,
                reason=ipb.PAYMENT_FAILURE_REASON_NO_MANDATE,
            ),
            NOT_FOUND,
        ),
        "GetSubscriptionBalance": (
            lambda o: ipb.GetSubscriptionBalanceRequest(subscription_id=o.subscription.id),
            NOT_FOUND,
        ),
        "SetAutoTopUp": (
            lambda o: ipb.SetAutoTopUpRequest(
                subscription_id=o.subscription.id, enabled=True, threshold="100", amount="1"
            ),
            NOT_FOUND,
        ),
        "CreateUsageAlert": (
            lambda o: ipb.CreateUsageAlertRequest(
                alert=ipb.UsageAlert(
                    plan_id=o.plan.id, kind=ipb.USAGE_ALERT_KIND_SPEND, threshold="1"
                )
            ),
            NOT_FOUND,
        ),
        "GetUsageAlert": (lambda o: ipb.GetUsageAlertRequest(id=o.alert.id), NOT_FOUND),
        "ListUsageAlerts": (lambda o: ipb.ListUsageAlertsRequest(plan_id=o.plan.id), EMPTY),
        "DeleteUsageAlert": (lambda o: ipb.DeleteUsageAlertRequest(id=o.alert.id), NOT_FOUND),
        "ListUsageAlertCrossings": (
            lambda o: ipb.ListUsageAlertCrossingsRequest(subscription_id=o.subscription.id),
            NOT_FOUND,
        ),
        "GetAutoTopUp": (
            lambda o: ipb.GetAutoTopUpRequest(subscription_id=o.subscription.id),
            NOT_FOUND,
        ),
        # Writes the caller's own replica of the user's balance; the owner's row is another.
        "ReportCreditBalance": (
            lambda o: ipb.ReportCreditBalanceRequest(
                user_id=o.subscription.user_id, balance="0", version=1_000_000
            ),
            HARMLESS,
        ),
        "ReportMandateChange": (
            lambda o: ipb.ReportMandateChangeRequest(
                change=ipb.MANDATE_CHANGE_REVOKED,
                mandate=ipb.MandateSummary(
                    mandate_id="mdt_probe", subscription_id=o.subscription.id
                ),
            ),
            NOT_FOUND,
        ),
        # The other merchant's own settings: its defaults, then its own change.
        "GetMerchantSettings": (lambda o: ipb.GetMerchantSettingsRequest(), HARMLESS),
        "UpdateMerchantSettings": (
            lambda o: ipb.UpdateMerchantSettingsRequest(
                settings=ipb.MerchantSettings(dunning_final_action=ipb.DUNNING_FINAL_ACTION_CANCEL)
            ),
            HARMLESS,
        ),
        "CreateWebhookEndpoint": (
            lambda o: ipb.CreateWebhookEndpointRequest(
                endpoint=ipb.WebhookEndpoint(url="https://other.example/h", event_types=["*"])
            ),
            HARMLESS,
        ),
        "ListWebhookEndpoints": (lambda o: ipb.ListWebhookEndpointsRequest(), EMPTY),
        "ListWebhookDeliveries": (
            lambda o: ipb.ListWebhookDeliveriesRequest(endpoint_id=o.endpoint.id),
            NOT_FOUND,
        ),
        "AdvanceTestClock": (
            lambda o: advance(ipb.AdvanceTestClockRequest(subscription_id=o.subscription.id)),
            NOT_FOUND,
        ),
    },
    "SettlementService": {
        "SubmitSettlement": (
            lambda o: spb.SubmitSettlementRequest(
                invoice_id=o.invoice.id,
                reference_hash="0x" + secrets.token_hex(32),
                transaction_hash="0x" + secrets.token_hex(32),
                payer_wallet_address="0x" + "11" * 20,
                merchant_wallet_address="0x" + "22" * 20,
            ),
            NOT_FOUND,
        ),
        "GetSettlement": (lambda o: spb.GetSettlementRequest(id=o.settlement.id), NOT_FOUND),
        # A wallet pays one merchant: the owner's cannot become the other's.
        "SetPayoutWallet": (
            lambda o: spb.SetPayoutWalletRequest(wallet_address=o.wallet),
            "ALREADY_EXISTS",
        ),
        "GetPayoutWallet": (lambda o: spb.GetPayoutWalletRequest(), NOT_FOUND),
        "GetPaymentRequest": (
            lambda o: spb.GetPaymentRequestRequest(invoice_id=o.invoice.id),
            NOT_FOUND,
        ),
        "RelayAuthorization": (
            lambda o: spb.RelayAuthorizationRequest(
                invoice_id=o.invoice.id,
                authorization=spb.Authorization(
                    from_address="0x" + "11" * 20,
                    to_address=o.wallet,
                    value="3000000",
                    valid_after="0",
                    valid_before=str(2**40),
                    nonce="0x" + "44" * 32,
                    signature="0x" + "55" * 64 + "1b",
                ),
            ),
            NOT_FOUND,
        ),
        "CreateMandate": (
            lambda o: spb.CreateMandateRequest(
                subscription_id=o.subscription.id,
                payer_wallet_address="0x" + "11" * 20,
                cap_base_units=3_000_000,
                period_seconds=3600,
                expire_time=to_timestamp(TEST_START + timedelta(days=400)),
                deadline=to_timestamp(TEST_START + timedelta(days=400)),
                signature="0x" + "55" * 64 + "1b",
            ),
            NOT_FOUND,
        ),
        "GetMandate": (
            lambda o: spb.GetMandateRequest(subscription_id=o.subscription.id),
            NOT_FOUND,
        ),
        # The other merchant's own record: it has no payout wallet, so nothing to sign for.
        "GetMandateContract": (lambda o: spb.GetMandateContractRequest(), "FAILED_PRECONDITION"),
        # The public pages' lookup: whose invoice an id is, to anyone holding the id.
        "LocateInvoice": (lambda o: spb.LocateInvoiceRequest(invoice_id=o.invoice.id), UNSCOPED),
        "ListSettlements": (
            lambda o: spb.ListSettlementsRequest(invoice_id=o.invoice.id),
            EMPTY,
        ),
        "RecordInvoice": (foreign_invoice, HARMLESS),
        "BatchRecordInvoices": (
            lambda o: spb.BatchRecordInvoicesRequest(invoices=[foreign_invoice(o)]),
            HARMLESS,
        ),
        "CreateCreditGrant": (
            lambda o: spb.CreateCreditGrantRequest(user_id=o.subscription.user_id, amount="1"),
            HARMLESS,
        ),
        "ListCreditGrants": (
            lambda o: spb.ListCreditGrantsRequest(user_id=o.subscription.user_id),
            EMPTY,
        ),
        "GetCreditBalance": (
            lambda o: spb.GetCreditBalanceRequest(user_id=o.subscription.user_id),
            EMPTY,
        ),
        # Spends the caller's own credits (none) on the id: the owner's grant is untouched.
        "ApplyCredits": (
            lambda o: spb.ApplyCreditsRequest(
                applications=[
                    spb.CreditApplication(
                        key=o.invoice.id,
                        invoice_id=o.invoice.id,
                        user_id=o.subscription.user_id,
                        amount="3",
                    )
                ]
            ),
            HARMLESS,
        ),
        "GetBalance": (lambda o: spb.GetBalanceRequest(account=o.account), EMPTY),
        "ListEntries": (lambda o: spb.ListEntriesRequest(account=o.account), EMPTY),
        "Reconcile": (lambda o: spb.ReconcileRequest(), HARMLESS),
    },
}
DESCRIPTORS = [
    mpb.DESCRIPTOR.services_by_name["MeteringService"],
    ipb.DESCRIPTOR.services_by_name["InvoicingService"],
    spb.DESCRIPTOR.services_by_name["SettlementService"],
]


def advance(request: ipb.AdvanceTestClockRequest) -> ipb.AdvanceTestClockRequest:
    request.advance_by.FromTimedelta(timedelta(days=1))
    return request


@pytest.mark.parametrize("service", DESCRIPTORS, ids=lambda s: s.name)
def test_every_rpc_has_an_isolation_probe(service: ServiceDescriptor) -> None:
    assert set(PROBES[service.name]) == {m.name for m in service.methods}


def stubs(platform: Platform) -> dict[str, Any]:
    return {
        "MeteringService": platform.metering_stub,
        "InvoicingService": platform.invoicing_stub,
        "SettlementService": platform.stub,
    }


async def owned(platform: Platform) -> Owned:
    merchant = Merchant(
        platform.invoicing, platform.invoicing_stub, platform.metering_stub, "mer_isolation_owner"
    )
    md = merchant.metadata
    service = await merchant.stub.CreateService(
        ipb.CreateServiceRequest(service=ipb.Service(name=MARKER, description=MARKER)), metadata=md
    )
    plan = await merchant.stub.CreatePlan(
        ipb.CreatePlanRequest(
            plan=ipb.Plan(
                service_id=service.id,
                name=MARKER,
                pricing_type=ipb.PRICING_TYPE_USAGE_BASED,
                billing_interval=ipb.BILLING_INTERVAL_MONTH,
                amount="0.00001",
            )
        ),
        metadata=md,
    )
    subscription = await merchant.subscribe(plan)
    session = await merchant.stub.CreateCheckoutSession(
        ipb.CreateCheckoutSessionRequest(
            session=ipb.CheckoutSession(
                plan_id=plan.id,
                new_subscriber=ipb.NewSubscriber(email=f"{MARKER}@example.com", name=MARKER),
                success_url=f"https://owner.example/{MARKER}",
                cancel_url=f"https://owner.example/{MARKER}",
            )
        ),
        metadata=md,
    )
    invoice = await merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount="3"
        ),
        metadata=md,
    )
    await merchant.relay()  # the ledger records the invoice
    endpoint = await merchant.stub.CreateWebhookEndpoint(
        ipb.CreateWebhookEndpointRequest(
            endpoint=ipb.WebhookEndpoint(url=f"https://owner.example/{MARKER}", event_types=["*"])
        ),
        metadata=md,
    )
    meter = await merchant.metering.CreateMeter(
        mpb.CreateMeterRequest(
            meter=mpb.Meter(
                service_id=service.id,
                event_key="tokens",
                aggregation=mpb.AGGREGATION_SUM,
                display_name=MARKER,
            )
        ),
        metadata=md,
    )
    event = mpb.UsageEventInput(
        service_id=service.id,
        subscription_id=subscription.id,
        user_id=subscription.user_id,
        event_key="tokens",
        quantity="7",
        properties={"note": MARKER},
    )
    recorded = await merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(event=event), metadata=md
    )
    wallet = await register_payout_wallet(platform, merchant.merchant_id)
    await platform.stub.CreateCreditGrant(
        spb.CreateCreditGrantRequest(user_id=subscription.user_id, amount="2", description=MARKER),
        metadata=md,
    )
    alert = await merchant.stub.CreateUsageAlert(
        ipb.CreateUsageAlertRequest(
            alert=ipb.UsageAlert(
                plan_id=plan.id,
                kind=ipb.USAGE_ALERT_KIND_USAGE_QUANTITY,
                event_key="tokens",
                threshold="1",
            )
        ),
        metadata=md,
    )
    coupon = await merchant.stub.CreateCoupon(
        ipb.CreateCouponRequest(
            coupon=ipb.Coupon(name=MARKER, amount_off="1", duration=ipb.COUPON_DURATION_FOREVER)
        ),
        metadata=md,
    )
    discount = await merchant.stub.CreateDiscount(
        ipb.CreateDiscountRequest(coupon_id=coupon.id, subscription_id=subscription.id),
        metadata=md,
    )
    settlement = await platform.stub.SubmitSettlement(
        spb.SubmitSettlementRequest(
            invoice_id=invoice.id,
            reference_hash="0x" + secrets.token_hex(32),
            transaction_hash="0x" + secrets.token_hex(32),
            payer_wallet_address="0x" + "33" * 20,
        ),
        metadata=md,
    )
    return Owned(
        merchant,
        service,
        plan,
        subscription,
        session,
        invoice,
        endpoint,
        meter,
        event,
        recorded.event_id,
        settlement,
        wallet,
        alert,
        coupon,
        discount,
    )


async def snapshot(platform: Platform, o: Owned) -> list[Message]:
    """What the owner sees of its objects."""
    md, stub = o.merchant.metadata, platform.invoicing_stub
    return [
        await stub.GetSubscription(ipb.GetSubscriptionRequest(id=o.subscription.id), metadata=md),
        await stub.GetInvoice(ipb.GetInvoiceRequest(id=o.invoice.id), metadata=md),
        await stub.GetUsageAlert(ipb.GetUsageAlertRequest(id=o.alert.id), metadata=md),
        await stub.GetCoupon(ipb.GetCouponRequest(id=o.coupon.id), metadata=md),
        await stub.GetCheckoutSession(ipb.GetCheckoutSessionRequest(id=o.session.id), metadata=md),
        await platform.stub.GetSettlement(
            spb.GetSettlementRequest(id=o.settlement.id), metadata=md
        ),
        await platform.stub.GetBalance(spb.GetBalanceRequest(account=o.account), metadata=md),
        await platform.stub.GetPayoutWallet(spb.GetPayoutWalletRequest(), metadata=md),
        await platform.stub.ListCreditGrants(
            spb.ListCreditGrantsRequest(user_id=o.subscription.user_id), metadata=md
        ),
        await platform.stub.GetCreditBalance(
            spb.GetCreditBalanceRequest(user_id=o.subscription.user_id), metadata=md
        ),
        await platform.metering_stub.GetMeter(mpb.GetMeterRequest(id=o.meter.id), metadata=md),
        await platform.metering_stub.ListUsageEvents(
            mpb.ListUsageEventsRequest(subscription_id=o.subscription.id), metadata=md
        ),
    ]


async def stream_once(stub: Any, request: Message) -> Message:
    async def one() -> AsyncIterator[Message]:
        yield request

    results: list[Message] = [r.result async for r in stub.StreamUsageEvents(one(), metadata=OTHER)]
    [result] = results
    return result


def is_empty(response: Message) -> bool:
    """No repeated field holds anything, and no amount is other than zero."""
    for descriptor, value in response.ListFields():
        if descriptor.is_repeated and len(value):
            return False
        if descriptor.name in ("debit_balance", "balance") and value != "0.000000":
            return False
    return True


async def test_another_merchant_sees_nothing_of_the_owner_and_changes_nothing(
    platform: Platform,
) -> None:
    o = await owned(platform)
    before = await snapshot(platform, o)
    # What the other merchant creates comes last: its lists must be empty before.
    calls = sorted(
        (
            (service_name, method, build, answer)
            for service_name, probes in PROBES.items()
            for method, (build, answer) in probes.items()
        ),
        key=lambda call: call[3] == HARMLESS,
    )
    for service_name, method, build, answer in calls:
        stub = stubs(platform)[service_name]
        request = build(o)
        where = f"{service_name}.{method}"
        try:
            if method == "StreamUsageEvents":
                response = await stream_once(stub, request)
            else:
                response = await getattr(stub, method)(request, metadata=OTHER)
        except grpc.aio.AioRpcError as error:
            assert answer == error.code().name, (where, error)
            assert MARKER not in (error.details() or ""), where
            continue
        assert answer not in (NOT_FOUND, DENIED), (where, response)
        assert MARKER not in str(response), where
        if answer == UNSCOPED:
            assert [f.name for f, _ in response.ListFields()] == ["merchant_id"], where
            continue
        assert o.merchant.merchant_id not in str(response), where
        if answer == EMPTY:
            assert is_empty(response), (where, response)
        elif answer == REJECTED:
            results = getattr(response, "results", [response])
            assert [(r.outcome, r.error.code) for r in results] == [
                (mpb.USAGE_EVENT_OUTCOME_REJECTED, "NOT_FOUND")
            ], where
    assert await snapshot(platform, o) == before
    # The owner's subscription and invoice in metering are untouched: its events are still taken.
    event = mpb.UsageEventInput(invoice_id=o.invoice.id)
    event.MergeFrom(o.event)
    again = await o.merchant.metering.RecordUsageEvent(
        mpb.RecordUsageEventRequest(event=event), metadata=o.merchant.metadata
    )
    assert again.outcome == mpb.USAGE_EVENT_OUTCOME_ACCEPTED
