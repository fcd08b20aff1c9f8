"""billing.settlement.v1.SettlementService: translates, calls one use case, translates back."""

from typing import Any, TypeAlias

import grpc

from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from service_kit.errors import InvalidArgument
from service_kit.proto_time import from_timestamp
from service_kit.tenancy import merchant_id
from settlement_svc.api import translate
from settlement_svc.service_layer import (
    ledger_use_cases,
    mandates,
    payment_requests,
    payout_wallets,
    prepaid_credits,
    relays,
    settlements,
)
from settlement_svc.service_layer.unit_of_work import Settlements

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class SettlementServicer(settlement_pb2_grpc.SettlementServiceServicer):
    def __init__(self, service: Settlements) -> None:
        self._service = service

    async def SubmitSettlement(
        self, request: pb.SubmitSettlementRequest, context: Context
    ) -> pb.Settlement:
        submitted = await settlements.submit_settlement(
            self._service,
            merchant_id(context),
            invoice_id=request.invoice_id,
            checkout_session_id=request.checkout_session_id,
            reference_hash=request.reference_hash,
            transaction_hash=request.transaction_hash,
            payer_wallet_address=request.payer_wallet_address,
            merchant_wallet_address=request.merchant_wallet_address,
        )
        return translate.settlement_to_proto(submitted)

    async def GetSettlement(
        self, request: pb.GetSettlementRequest, context: Context
    ) -> pb.Settlement:
        found = await settlements.get_settlement(self._service, merchant_id(context), request.id)
        return translate.settlement_to_proto(found)

    async def ListSettlements(
        self, request: pb.ListSettlementsRequest, context: Context
    ) -> pb.ListSettlementsResponse:
        page, token = await settlements.list_settlements(
            self._service,
            merchant_id(context),
            request.invoice_id,
            request.page_size,
            request.page_token,
        )
        return pb.ListSettlementsResponse(
            settlements=[translate.settlement_to_proto(s) for s in page], next_page_token=token
        )

    async def GetPaymentRequest(
        self, request: pb.GetPaymentRequestRequest, context: Context
    ) -> pb.PaymentRequest:
        view = await payment_requests.payment_request(
            self._service, merchant_id(context), request.invoice_id, request.checkout_session_id
        )
        return translate.payment_request_to_proto(view, self._service.settings)

    async def RelayAuthorization(
        self, request: pb.RelayAuthorizationRequest, context: Context
    ) -> pb.Settlement:
        merchant = merchant_id(context)
        if not request.HasField("authorization"):
            raise InvalidArgument("authorization is required", field="authorization")
        relayed = await relays.relay_authorization(
            self._service,
            merchant,
            request.invoice_id,
            request.checkout_session_id,
            translate.authorization_from_proto(request.authorization),
        )
        return translate.settlement_to_proto(relayed)

    async def LocateInvoice(
        self, request: pb.LocateInvoiceRequest, context: Context
    ) -> pb.InvoiceLocation:
        # Not scoped to a merchant: it answers whose invoice an id is, and nothing else.
        owner = await payment_requests.locate_invoice(self._service, request.invoice_id)
        return pb.InvoiceLocation(merchant_id=owner)

    async def CreateMandate(self, request: pb.CreateMandateRequest, context: Context) -> pb.Mandate:
        for field in ("expire_time", "deadline"):
            if not request.HasField(field):
                raise InvalidArgument(f"{field} is required", field=field)
        created = await mandates.create_mandate(
            self._service,
            merchant_id(context),
            subscription_id=request.subscription_id,
            payer_wallet_address=request.payer_wallet_address,
            cap_base_units=request.cap_base_units,
            period_seconds=request.period_seconds,
            expire_time=from_timestamp(request.expire_time),
            deadline=from_timestamp(request.deadline),
            signature=request.signature,
            permit=translate.permit_from_proto(request.permit)
            if request.HasField("permit")
            else None,
        )
        return translate.mandate_to_proto(created)

    async def GetMandate(self, request: pb.GetMandateRequest, context: Context) -> pb.Mandate:
        found = await mandates.get_mandate(
            self._service, merchant_id(context), request.subscription_id
        )
        return translate.mandate_to_proto(found)

    async def GetMandateContract(
        self, request: pb.GetMandateContractRequest, context: Context
    ) -> pb.MandateContract:
        found = await mandates.get_mandate_contract(self._service, merchant_id(context))
        return translate.mandate_contract_to_proto(found)

    async def SetPayoutWallet(
        self, request: pb.SetPayoutWalletRequest, context: Context
    ) -> pb.PayoutWallet:
        wallet = await payout_wallets.set_payout_wallet(
            self._service, merchant_id(context), request.wallet_address
        )
        return translate.payout_wallet_to_proto(wallet)

    async def GetPayoutWallet(
        self, request: pb.GetPayoutWalletRequest, context: Context
    ) -> pb.PayoutWallet:
        wallet = await payout_wallets.get_payout_wallet(self._service, merchant_id(context))
        return translate.payout_wallet_to_proto(wallet)

    async def RecordInvoice(
        self, request: pb.RecordInvoiceRequest, context: Context
    ) -> pb.RecordInvoiceResponse:
        posted = await ledger_use_cases.record_invoice(
            self._service, merchant_id(context), translate.invoice_record_from_proto(request)
        )
        return pb.RecordInvoiceResponse(transaction_id=posted)

    async def BatchRecordInvoices(
        self, request: pb.BatchRecordInvoicesRequest, context: Context
    ) -> pb.BatchRecordInvoicesResponse:
        posted = await ledger_use_cases.record_invoices(
            self._service,
            merchant_id(context),
            [translate.invoice_record_from_proto(invoice) for invoice in request.invoices],
        )
        return pb.BatchRecordInvoicesResponse(
            results=[pb.RecordInvoiceResponse(transaction_id=p) for p in posted]
        )

    async def CreateCreditGrant(
        self, request: pb.CreateCreditGrantRequest, context: Context
    ) -> pb.CreditGrant:
        grant = await prepaid_credits.create_grant(
            self._service, merchant_id(context), translate.grant_terms_from_proto(request)
        )
        return translate.credit_grant_to_proto(grant, self._service.clock.now())

    async def ListCreditGrants(
        self, request: pb.ListCreditGrantsRequest, context: Context
    ) -> pb.ListCreditGrantsResponse:
        grants, token = await prepaid_credits.list_grants(
            self._service,
            merchant_id(context),
            request.user_id,
            request.page_size,
            request.page_token,
        )
        now = self._service.clock.now()
        return pb.ListCreditGrantsResponse(
            credit_grants=[translate.credit_grant_to_proto(g, now) for g in grants],
            next_page_token=token,
        )

    async def GetCreditBalance(
        self, request: pb.GetCreditBalanceRequest, context: Context
    ) -> pb.CreditBalance:
        found = await prepaid_credits.balance(self._service, merchant_id(context), request.user_id)
        return translate.credit_balance_to_proto(request.user_id, found)

    async def ApplyCredits(
        self, request: pb.ApplyCreditsRequest, context: Context
    ) -> pb.ApplyCreditsResponse:
        applied, balances = await prepaid_credits.apply_credits(
            self._service,
            merchant_id(context),
            [translate.application_from_proto(a) for a in request.applications],
        )
        return pb.ApplyCreditsResponse(
            applied=[translate.money(a) for a in applied],
            balances=[
                pb.SubscriberCredits(
                    user_id=b.user_id, balance=translate.money(b.balance), version=b.version
                )
                for b in balances
            ],
        )

    async def GetBalance(self, request: pb.GetBalanceRequest, context: Context) -> pb.Balance:
        amount = await ledger_use_cases.balance(
            self._service, merchant_id(context), request.account
        )
        return pb.Balance(
            account=request.account, debit_balance=translate.money(amount), currency="USDC"
        )

    async def ListEntries(
        self, request: pb.ListEntriesRequest, context: Context
    ) -> pb.ListEntriesResponse:
        entries, token = await ledger_use_cases.list_entries(
            self._service,
            merchant_id(context),
            request.account,
            request.page_size,
            request.page_token,
        )
        return pb.ListEntriesResponse(
            entries=[translate.entry_to_proto(e) for e in entries], next_page_token=token
        )

    async def Reconcile(
        self, request: pb.ReconcileRequest, context: Context
    ) -> pb.ReconcileResponse:
        result = await ledger_use_cases.reconcile(self._service, merchant_id(context))
        return translate.reconciliation_to_proto(result)
