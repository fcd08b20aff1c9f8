"""billing.invoicing.v1.InvoicingService: translates, calls one use case, translates back."""

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import grpc

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from invoicing_svc.api import translate
from invoicing_svc.domain.model import CheckoutSession, CheckoutStatus, Service
from invoicing_svc.domain.webhooks import WebhookEndpoint
from invoicing_svc.service_layer import (
    alerts,
    catalog,
    checkout,
    credit_balances,
    customers,
    discounts,
    dunning,
    invoices,
    pauses,
    plan_changes,
    plan_versions,
    settlement_events,
    subscriptions,
    webhooks,
)
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.errors import InvalidArgument
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id
from service_kit.proto_time import from_timestamp
from service_kit.tenancy import merchant_id

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class InvoicingServicer(invoicing_pb2_grpc.InvoicingServiceServicer):
    def __init__(self, invoicing: Invoicing) -> None:
        self._invoicing = invoicing

    def _now(self) -> datetime:
        return self._invoicing.clock.now()

    # Catalog

    async def CreateService(self, request: pb.CreateServiceRequest, context: Context) -> pb.Service:
        service = Service(
            id=new_id("svc"),
            merchant_id=merchant_id(context),
            name=request.service.name,
            description=request.service.description,
            create_time=self._now(),
        )
        key = RequestKey.of("CreateService", request, request.request_id)
        return translate.service_to_proto(
            await catalog.create_service(self._invoicing, service, key)
        )

    async def GetService(self, request: pb.GetServiceRequest, context: Context) -> pb.Service:
        found = await catalog.get_service(self._invoicing, merchant_id(context), request.id)
        return translate.service_to_proto(found)

    async def ListServices(
        self, request: pb.ListServicesRequest, context: Context
    ) -> pb.ListServicesResponse:
        page, token = await catalog.list_services(
            self._invoicing, merchant_id(context), request.page_size, request.page_token
        )
        return pb.ListServicesResponse(
            services=[translate.service_to_proto(s) for s in page], next_page_token=token
        )

    async def CreatePlan(self, request: pb.CreatePlanRequest, context: Context) -> pb.Plan:
        plan = translate.plan_from_proto(
            request.plan, plan_id=new_id("plan"), merchant_id=merchant_id(context), now=self._now()
        )
        key = RequestKey.of("CreatePlan", request, request.request_id)
        return translate.plan_to_proto(await catalog.create_plan(self._invoicing, plan, key))

    async def GetPlan(self, request: pb.GetPlanRequest, context: Context) -> pb.Plan:
        found = await catalog.get_plan(self._invoicing, merchant_id(context), request.id)
        return translate.plan_to_proto(found)

    async def UpdatePlan(self, request: pb.UpdatePlanRequest, context: Context) -> pb.Plan:
        change = translate.plan_change_from_proto(request.plan, request.update_mask.paths)
        changed = await catalog.update_plan(
            self._invoicing, merchant_id(context), request.plan.id, change
        )
        return translate.plan_to_proto(changed)

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        page, token = await catalog.list_plans(
            self._invoicing,
            merchant_id(context),
            request.service_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListPlansResponse(
            plans=[translate.plan_to_proto(p) for p in page], next_page_token=token
        )

    # Checkout and subscriptions

    def _checkout(self, session: CheckoutSession) -> pb.CheckoutSession:
        return translate.checkout_to_proto(session, self._invoicing.settings.checkout_base_url)

    async def CreateCheckoutSession(
        self, request: pb.CreateCheckoutSessionRequest, context: Context
    ) -> pb.CheckoutSession:
        draft = request.session
        if not draft.plan_id:
            raise InvalidArgument("session.plan_id is required", field="session.plan_id")
        session = CheckoutSession(
            id=new_id("cs"),
            merchant_id=merchant_id(context),
            plan_id=draft.plan_id,
            user_id=draft.user_id,
            success_url=draft.success_url,
            cancel_url=draft.cancel_url,
            status=CheckoutStatus.OPEN,
            amount_due=Decimal(0),
            create_time=self._now(),
        )
        key = RequestKey.of("CreateCheckoutSession", request, request.request_id)
        created = await checkout.create_checkout_session(
            self._invoicing, session, draft.new_subscriber.email, draft.new_subscriber.name, key
        )
        return self._checkout(created)

    async def GetCheckoutSession(
        self, request: pb.GetCheckoutSessionRequest, context: Context
    ) -> pb.CheckoutSession:
        found = await checkout.get_checkout_session(
            self._invoicing, merchant_id(context), request.id
        )
        return self._checkout(found)

    async def CompleteCheckoutSession(
        self, request: pb.CompleteCheckoutSessionRequest, context: Context
    ) -> pb.CheckoutSession:
        payment = (
            translate.payment_from_proto(request.payment) if request.HasField("payment") else None
        )
        completed = await checkout.complete_checkout_session(
            self._invoicing, merchant_id(context), request.id, payment
        )
        return self._checkout(completed)

    async def ConfirmCheckoutPayment(
        self, request: pb.ConfirmCheckoutPaymentRequest, context: Context
    ) -> pb.CheckoutSession:
        confirmed = await checkout.confirm_checkout_payment(
            self._invoicing,
            merchant_id(context),
            request.id,
            request.settlement_id,
            translate.attached_settlement(request),
        )
        return self._checkout(confirmed)

    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        found = await subscriptions.get_subscription(
            self._invoicing, merchant_id(context), request.id
        )
        return translate.subscription_to_proto(found)

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Context
    ) -> pb.ListSubscriptionsResponse:
        page, token = await subscriptions.list_subscriptions(
            self._invoicing,
            merchant_id(context),
            request.service_id,
            request.user_id,
            request.page_size,
            request.page_token,
            plan_id=request.plan_id,
            status=translate.subscription_status_from_proto(request.status),
        )
        return pb.ListSubscriptionsResponse(
            subscriptions=[translate.subscription_to_proto(s) for s in page], next_page_token=token
        )

    async def GetCustomer(self, request: pb.GetCustomerRequest, context: Context) -> pb.Customer:
        found = await customers.get_customer(self._invoicing, merchant_id(context), request.id)
        return translate.customer_to_proto(found)

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: Context
    ) -> pb.ListCustomersResponse:
        page, token = await customers.list_customers(
            self._invoicing,
            merchant_id(context),
            request.email,
            request.page_size,
            request.page_token,
        )
        return pb.ListCustomersResponse(
            customers=[translate.customer_to_proto(c) for c in page], next_page_token=token
        )

    async def GetCustomerAccess(
        self, request: pb.GetCustomerAccessRequest, context: Context
    ) -> pb.CustomerAccess:
        access = await customers.customer_access(
            self._invoicing, merchant_id(context), request.email
        )
        return translate.access_to_proto(access)

    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        key = RequestKey.of("CancelSubscription", request, request.request_id)
        canceled = await subscriptions.cancel_subscription(
            self._invoicing, merchant_id(context), request.id, request.at_period_end, key
        )
        return translate.subscription_to_proto(canceled)

    async def ChangeSubscriptionPlan(
        self, request: pb.ChangeSubscriptionPlanRequest, context: Context
    ) -> pb.ChangeSubscriptionPlanResponse:
        key = RequestKey.of("ChangeSubscriptionPlan", request, request.request_id)
        changed, invoice = await plan_changes.change_plan(
            self._invoicing,
            merchant_id(context),
            request.id,
            request.plan_id,
            translate.change_timing(request.timing),
            translate.proration_behavior(request.proration_behavior),
            key,
        )
        response = pb.ChangeSubscriptionPlanResponse(
            subscription=translate.subscription_to_proto(changed)
        )
        if invoice is not None:
            response.invoice.CopyFrom(translate.invoice_to_proto(invoice))
        return response

    async def PauseSubscription(
        self, request: pb.PauseSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        key = RequestKey.of("PauseSubscription", request, request.request_id)
        paused = await pauses.pause_subscription(
            self._invoicing, merchant_id(context), request.id, key
        )
        return translate.subscription_to_proto(paused)

    async def ResumeSubscription(
        self, request: pb.ResumeSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        key = RequestKey.of("ResumeSubscription", request, request.request_id)
        resumed = await pauses.resume_subscription(
            self._invoicing, merchant_id(context), request.id, key
        )
        return translate.subscription_to_proto(resumed)

    async def AdvanceTestClock(
        self, request: pb.AdvanceTestClockRequest, context: Context
    ) -> pb.Subscription:
        moved = await subscriptions.advance_test_clock(
            self._invoicing,
            merchant_id(context),
            request.subscription_id,
            request.advance_by.ToTimedelta(),
        )
        return translate.subscription_to_proto(moved)

    # Invoices

    async def CreateInvoice(self, request: pb.CreateInvoiceRequest, context: Context) -> pb.Invoice:
        has_start, has_end = request.HasField("period_start"), request.HasField("period_end")
        if has_start != has_end:
            raise InvalidArgument("period_start and period_end go together", field="period_end")
        period = (
            (from_timestamp(request.period_start), from_timestamp(request.period_end))
            if has_start
            else None
        )
        created = await invoices.create_invoice(
            self._invoicing,
            merchant_id(context),
            subscription_id=request.subscription_id,
            payment_plan_id=request.payment_plan_id,
            amount_text=request.amount,
            period=period,
            draft=request.draft,
            top_up=request.top_up,
            request=RequestKey.of("CreateInvoice", request, request.request_id),
        )
        return translate.invoice_to_proto(created)

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Context) -> pb.Invoice:
        found = await invoices.get_invoice(self._invoicing, merchant_id(context), request.id)
        return translate.invoice_to_proto(found)

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Context
    ) -> pb.ListInvoicesResponse:
        page, token = await invoices.list_invoices(
            self._invoicing,
            merchant_id(context),
            request.subscription_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListInvoicesResponse(
            invoices=[translate.invoice_to_proto(i) for i in page], next_page_token=token
        )

    async def FinalizeInvoice(
        self, request: pb.FinalizeInvoiceRequest, context: Context
    ) -> pb.Invoice:
        changed = await invoices.finalize_invoice(self._invoicing, merchant_id(context), request.id)
        return translate.invoice_to_proto(changed)

    async def VoidInvoice(self, request: pb.VoidInvoiceRequest, context: Context) -> pb.Invoice:
        changed = await invoices.void_invoice(self._invoicing, merchant_id(context), request.id)
        return translate.invoice_to_proto(changed)

    async def MarkInvoiceUncollectible(
        self, request: pb.MarkInvoiceUncollectibleRequest, context: Context
    ) -> pb.Invoice:
        changed = await invoices.mark_uncollectible(
            self._invoicing, merchant_id(context), request.id
        )
        return translate.invoice_to_proto(changed)

    async def MarkInvoicePaid(
        self, request: pb.MarkInvoicePaidRequest, context: Context
    ) -> pb.Invoice:
        paid = await invoices.mark_invoice_paid(
            self._invoicing,
            merchant_id(context),
            request.id,
            request.settlement_id,
            translate.attached_settlement(request),
        )
        return translate.invoice_to_proto(paid)

    async def ReportSettlementFailure(
        self, request: pb.ReportSettlementFailureRequest, context: Context
    ) -> pb.ReportSettlementFailureResponse:
        summary = request.settlement
        for field in ("settlement_id", "failure_reason"):
            if not getattr(summary, field):
                raise InvalidArgument(
                    f"settlement.{field} is required", field=f"settlement.{field}"
                )
        key = RequestKey.of("ReportSettlementFailure", request, summary.settlement_id)
        assert key is not None
        await settlement_events.report_settlement_failure(
            self._invoicing, merchant_id(context), translate.settlement_data(summary), key
        )
        return pb.ReportSettlementFailureResponse()

    async def ReportMandateChange(
        self, request: pb.ReportMandateChangeRequest, context: Context
    ) -> pb.ReportMandateChangeResponse:
        event_type = translate.MANDATE_EVENT_TYPES.get(request.change)
        if event_type is None:
            raise InvalidArgument("change is required", field="change")
        summary = request.mandate
        for field in ("mandate_id", "subscription_id"):
            require_identifier(getattr(summary, field), f"mandate.{field}")
        key = RequestKey.of("ReportMandateChange", request, f"{summary.mandate_id}:{event_type}")
        assert key is not None
        await settlement_events.report_mandate_change(
            self._invoicing,
            merchant_id(context),
            event_type,
            translate.mandate_data(summary),
            key,
            expire_time=from_timestamp(summary.expire_time)
            if summary.HasField("expire_time")
            else None,
        )
        return pb.ReportMandateChangeResponse()

    async def ReportPaymentAttemptFailure(
        self, request: pb.ReportPaymentAttemptFailureRequest, context: Context
    ) -> pb.Invoice:
        failed = await dunning.report_payment_attempt_failure(
            self._invoicing,
            merchant_id(context),
            request.invoice_id,
            number=request.attempt_number,
            reason=translate.failure_reason_from_proto(request.reason),
            detail=request.detail,
            next_attempt_time=translate.optional_time(request, "next_attempt_time"),
        )
        return translate.invoice_to_proto(failed)

    async def ReportCreditBalance(
        self, request: pb.ReportCreditBalanceRequest, context: Context
    ) -> pb.ReportCreditBalanceResponse:
        await credit_balances.report_credit_balance(
            self._invoicing, merchant_id(context), request.user_id, request.balance, request.version
        )
        return pb.ReportCreditBalanceResponse()

    async def GetSubscriptionBalance(
        self, request: pb.GetSubscriptionBalanceRequest, context: Context
    ) -> pb.SubscriptionBalance:
        found = await credit_balances.subscription_balance(
            self._invoicing, merchant_id(context), request.subscription_id
        )
        return translate.subscription_balance_to_proto(found)

    async def SetAutoTopUp(self, request: pb.SetAutoTopUpRequest, context: Context) -> pb.AutoTopUp:
        terms = (request.threshold, request.amount) if request.enabled else None
        found = await credit_balances.set_auto_top_up(
            self._invoicing, merchant_id(context), request.subscription_id, terms
        )
        return translate.auto_top_up_to_proto(request.subscription_id, found)

    async def GetAutoTopUp(self, request: pb.GetAutoTopUpRequest, context: Context) -> pb.AutoTopUp:
        found = await credit_balances.get_auto_top_up(
            self._invoicing, merchant_id(context), request.subscription_id
        )
        return translate.auto_top_up_to_proto(request.subscription_id, found)

    # Usage alerts

    async def CreateUsageAlert(
        self, request: pb.CreateUsageAlertRequest, context: Context
    ) -> pb.UsageAlert:
        alert = request.alert
        created = await alerts.create_usage_alert(
            self._invoicing,
            merchant_id(context),
            plan_id=alert.plan_id,
            subscription_id=alert.subscription_id,
            kind=translate.alert_kind_from_proto(alert.kind),
            event_key=alert.event_key,
            threshold=alert.threshold,
            action=translate.alert_action_from_proto(alert.action),
            request=RequestKey.of("CreateUsageAlert", request, request.request_id),
        )
        return translate.alert_to_proto(created)

    async def GetUsageAlert(
        self, request: pb.GetUsageAlertRequest, context: Context
    ) -> pb.UsageAlert:
        found = await alerts.get_usage_alert(self._invoicing, merchant_id(context), request.id)
        return translate.alert_to_proto(found)

    async def ListUsageAlerts(
        self, request: pb.ListUsageAlertsRequest, context: Context
    ) -> pb.ListUsageAlertsResponse:
        page, token = await alerts.list_usage_alerts(
            self._invoicing,
            merchant_id(context),
            plan_id=request.plan_id,
            subscription_id=request.subscription_id,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListUsageAlertsResponse(
            alerts=[translate.alert_to_proto(a) for a in page], next_page_token=token
        )

    async def DeleteUsageAlert(
        self, request: pb.DeleteUsageAlertRequest, context: Context
    ) -> pb.DeleteUsageAlertResponse:
        await alerts.delete_usage_alert(self._invoicing, merchant_id(context), request.id)
        return pb.DeleteUsageAlertResponse()

    async def ListUsageAlertCrossings(
        self, request: pb.ListUsageAlertCrossingsRequest, context: Context
    ) -> pb.ListUsageAlertCrossingsResponse:
        page, token = await alerts.list_alert_crossings(
            self._invoicing,
            merchant_id(context),
            request.subscription_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListUsageAlertCrossingsResponse(
            crossings=[translate.crossing_to_proto(c) for c in page], next_page_token=token
        )

    # Merchant settings

    async def GetMerchantSettings(
        self, request: pb.GetMerchantSettingsRequest, context: Context
    ) -> pb.MerchantSettings:
        found = await dunning.get_merchant_settings(self._invoicing, merchant_id(context))
        return translate.settings_to_proto(found)

    async def UpdateMerchantSettings(
        self, request: pb.UpdateMerchantSettingsRequest, context: Context
    ) -> pb.MerchantSettings:
        action = translate.final_action_from_proto(request.settings.dunning_final_action)
        changed = await dunning.update_merchant_settings(
            self._invoicing, merchant_id(context), action
        )
        return translate.settings_to_proto(changed)

    # Webhooks

    async def CreateWebhookEndpoint(
        self, request: pb.CreateWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            merchant_id=merchant_id(context),
            url=request.endpoint.url,
            event_types=tuple(request.endpoint.event_types),
            secret="",
            create_time=self._now(),
            description=request.endpoint.description,
        )
        key = RequestKey.of("CreateWebhookEndpoint", request, request.request_id)
        created = await webhooks.create_webhook_endpoint(self._invoicing, endpoint, key)
        return translate.endpoint_to_proto(created, with_secret=True)

    async def ListWebhookEndpoints(
        self, request: pb.ListWebhookEndpointsRequest, context: Context
    ) -> pb.ListWebhookEndpointsResponse:
        page, token = await webhooks.list_webhook_endpoints(
            self._invoicing, merchant_id(context), request.page_size, request.page_token
        )
        return pb.ListWebhookEndpointsResponse(
            endpoints=[translate.endpoint_to_proto(e, with_secret=False) for e in page],
            next_page_token=token,
        )

    async def UpdateWebhookEndpoint(
        self, request: pb.UpdateWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        changes = WebhookEndpoint(
            id=request.endpoint.id,
            merchant_id=merchant_id(context),
            url=request.endpoint.url,
            event_types=tuple(request.endpoint.event_types),
            secret="",
            create_time=self._now(),
            description=request.endpoint.description,
        )
        changed = await webhooks.update_webhook_endpoint(
            self._invoicing, merchant_id(context), changes, list(request.update_mask.paths)
        )
        return translate.endpoint_to_proto(changed, with_secret=False)

    async def DisableWebhookEndpoint(
        self, request: pb.DisableWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        changed = await webhooks.set_webhook_endpoint_enabled(
            self._invoicing, merchant_id(context), request.id, enabled=False
        )
        return translate.endpoint_to_proto(changed, with_secret=False)

    async def EnableWebhookEndpoint(
        self, request: pb.EnableWebhookEndpointRequest, context: Context
    ) -> pb.WebhookEndpoint:
        changed = await webhooks.set_webhook_endpoint_enabled(
            self._invoicing, merchant_id(context), request.id, enabled=True
        )
        return translate.endpoint_to_proto(changed, with_secret=False)

    async def DeleteWebhookEndpoint(
        self, request: pb.DeleteWebhookEndpointRequest, context: Context
    ) -> pb.DeleteWebhookEndpointResponse:
        await webhooks.delete_webhook_endpoint(self._invoicing, merchant_id(context), request.id)
        return pb.DeleteWebhookEndpointResponse()

    async def RollWebhookEndpointSecret(
        self, request: pb.RollWebhookEndpointSecretRequest, context: Context
    ) -> pb.WebhookEndpoint:
        rolled = await webhooks.roll_webhook_endpoint_secret(
            self._invoicing, merchant_id(context), request.id
        )
        return translate.endpoint_to_proto(rolled, with_secret=True)

    async def SendTestWebhookEvent(
        self, request: pb.SendTestWebhookEventRequest, context: Context
    ) -> pb.WebhookDelivery:
        delivery = await webhooks.send_test_webhook_event(
            self._invoicing, merchant_id(context), request.endpoint_id
        )
        return translate.delivery_to_proto(delivery)

    async def RetryWebhookDelivery(
        self, request: pb.RetryWebhookDeliveryRequest, context: Context
    ) -> pb.WebhookDelivery:
        delivery = await webhooks.retry_webhook_delivery(
            self._invoicing, merchant_id(context), request.endpoint_id, request.delivery_id
        )
        return translate.delivery_to_proto(delivery)

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Context
    ) -> pb.ListWebhookDeliveriesResponse:
        page, token = await webhooks.list_webhook_deliveries(
            self._invoicing,
            merchant_id(context),
            request.endpoint_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[translate.delivery_to_proto(d) for d in page], next_page_token=token
        )

    async def CreatePlanVersion(
        self, request: pb.CreatePlanVersionRequest, context: Context
    ) -> pb.Plan:
        key = RequestKey.of("CreatePlanVersion", request, request.request_id)
        version = await catalog.create_plan_version(
            self._invoicing,
            merchant_id(context),
            request.plan_id,
            translate.prices_from_proto(request),
            key,
        )
        return translate.plan_to_proto(version)

    async def MigratePlanSubscriptions(
        self, request: pb.MigratePlanSubscriptionsRequest, context: Context
    ) -> pb.MigratePlanSubscriptionsResponse:
        migrations, target, token = await plan_versions.migrate_subscriptions(
            self._invoicing,
            merchant_id(context),
            request.plan_id,
            to_plan_id=request.to_plan_id,
            dry_run=request.dry_run,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.MigratePlanSubscriptionsResponse(
            to_plan_id=target.id,
            migrations=[translate.migration_to_proto(m) for m in migrations],
            next_page_token=token,
        )

    # Coupons and discounts

    async def CreateCoupon(self, request: pb.CreateCouponRequest, context: Context) -> pb.Coupon:
        key = RequestKey.of("CreateCoupon", request, request.request_id)
        coupon = translate.coupon_from_proto(
            request.coupon, merchant_id(context), self._invoicing.clock.now()
        )
        created = await discounts.create_coupon(self._invoicing, coupon, key)
        return translate.coupon_to_proto(created)

    async def GetCoupon(self, request: pb.GetCouponRequest, context: Context) -> pb.Coupon:
        coupon = await discounts.get_coupon(self._invoicing, merchant_id(context), request.id)
        return translate.coupon_to_proto(coupon)

    async def ListCoupons(
        self, request: pb.ListCouponsRequest, context: Context
    ) -> pb.ListCouponsResponse:
        page, token = await discounts.list_coupons(
            self._invoicing, merchant_id(context), request.page_size, request.page_token
        )
        return pb.ListCouponsResponse(
            coupons=[translate.coupon_to_proto(c) for c in page], next_page_token=token
        )

    async def CreateDiscount(
        self, request: pb.CreateDiscountRequest, context: Context
    ) -> pb.Discount:
        key = RequestKey.of("CreateDiscount", request, request.request_id)
        discount = await discounts.create_discount(
            self._invoicing,
            merchant_id(context),
            request.coupon_id,
            subscription_id=request.subscription_id,
            customer_id=request.customer_id,
            request=key,
        )
        return translate.discount_to_proto(discount)

    async def ListDiscounts(
        self, request: pb.ListDiscountsRequest, context: Context
    ) -> pb.ListDiscountsResponse:
        page, token = await discounts.list_discounts(
            self._invoicing,
            merchant_id(context),
            subscription_id=request.subscription_id,
            customer_id=request.customer_id,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListDiscountsResponse(
            discounts=[translate.discount_to_proto(d) for d in page], next_page_token=token
        )

    async def DeleteDiscount(
        self, request: pb.DeleteDiscountRequest, context: Context
    ) -> pb.Discount:
        deleted = await discounts.delete_discount(self._invoicing, merchant_id(context), request.id)
        return translate.discount_to_proto(deleted)
