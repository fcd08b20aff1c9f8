"""Protobuf messages <-> settlement domain types."""

from datetime import datetime
from decimal import Decimal

from billing.settlement.v1 import settlement_pb2 as pb
from service_kit.errors import InvalidArgument
from service_kit.proto_time import from_timestamp, to_timestamp
from settlement_svc.domain import authorizations
from settlement_svc.domain.authorizations import Authorization
from settlement_svc.domain.credit_grants import CreditBalance, CreditGrant
from settlement_svc.domain.ledger import PostedEntry
from settlement_svc.domain.mandates import Mandate
from settlement_svc.domain.model import PayoutWallet, Settlement
from settlement_svc.domain.reconciliation import Reconciliation
from settlement_svc.service_layer.ledger_use_cases import InvoiceRecord
from settlement_svc.service_layer.mandates import MandateContractInfo, PermitTerms
from settlement_svc.service_layer.payment_requests import RequestView
from settlement_svc.service_layer.prepaid_credits import ApplicationRequest, GrantTerms
from settlement_svc.settings import SettlementSettings


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001')):f}"


def invoice_record_from_proto(request: pb.RecordInvoiceRequest) -> InvoiceRecord:
    return InvoiceRecord(
        request.invoice_id, request.user_id, request.amount, request.voided, request.top_up
    )


def settlement_to_proto(settlement: Settlement) -> pb.Settlement:
    message = pb.Settlement(
        id=settlement.id,
        invoice_id=settlement.invoice_id,
        checkout_session_id=settlement.checkout_session_id,
        user_id=settlement.user_id,
        reference_hash=settlement.reference_hash,
        transaction_hash=settlement.transaction_hash,
        payer_wallet_address=settlement.payer_wallet_address,
        merchant_wallet_address=settlement.merchant_wallet_address,
        status=pb.SettlementStatus.Value(f"SETTLEMENT_STATUS_{settlement.status.value}"),
        failure_detail=settlement.failure_detail,
        amount_due=money(settlement.amount_due),
        amount_paid=money(settlement.amount_paid) if settlement.amount_paid is not None else "",
        block_number=settlement.block_number or 0,
        confirmations=settlement.confirmations,
        create_time=to_timestamp(settlement.create_time),
        origin=pb.SettlementOrigin.Value(f"SETTLEMENT_ORIGIN_{settlement.origin.value}"),
    )
    if settlement.failure_reason is not None:
        message.failure_reason = pb.FailureReason.Value(
            f"FAILURE_REASON_{settlement.failure_reason.value}"
        )
    if settlement.confirm_time is not None:
        message.confirm_time.CopyFrom(to_timestamp(settlement.confirm_time))
    return message


def payout_wallet_to_proto(wallet: PayoutWallet) -> pb.PayoutWallet:
    return pb.PayoutWallet(
        wallet_address=wallet.wallet_address, update_time=to_timestamp(wallet.update_time)
    )


def entry_to_proto(entry: PostedEntry) -> pb.JournalEntry:
    return pb.JournalEntry(
        transaction_id=entry.transaction_id,
        kind=entry.kind,
        reference=entry.reference,
        account=entry.account,
        debit=money(entry.debit),
        credit=money(entry.credit),
        currency=entry.currency,
        create_time=to_timestamp(entry.create_time),
    )


def reconciliation_to_proto(result: Reconciliation) -> pb.ReconcileResponse:
    return pb.ReconcileResponse(
        differences=[
            pb.Difference(kind=d.kind, reference=d.reference, expected=d.expected, actual=d.actual)
            for d in result.differences
        ],
        invoices_checked=result.invoices_checked,
        settlements_checked=result.settlements_checked,
    )


def payment_request_to_proto(view: RequestView, settings: SettlementSettings) -> pb.PaymentRequest:
    request = view.request
    if request.invoice_id:
        hosted = f"{settings.payment_page_base_url.rstrip('/')}/{request.invoice_id}"
    else:
        hosted = f"{settings.checkout_base_url.rstrip('/')}/{request.checkout_session_id}"
    return pb.PaymentRequest(
        reference_hash=request.reference_hash,
        invoice_id=request.invoice_id,
        checkout_session_id=request.checkout_session_id,
        user_id=request.user_id,
        amount=money(request.amount),
        amount_base_units=str(request.amount_base_units),
        payee_wallet_address=request.payee,
        token_address=request.token,
        chain_id=request.chain_id,
        expire_time=to_timestamp(request.expire_time),
        uri=request.uri,
        hosted_url=hosted,
        status=pb.PaymentRequestStatus.Value(f"PAYMENT_REQUEST_STATUS_{view.status.value}"),
        settlement_id=view.settlement_id,
        create_time=to_timestamp(request.create_time),
        token_name=settings.usdc_eip712_name,
        token_version=settings.usdc_eip712_version,
    )


def authorization_from_proto(message: pb.Authorization) -> Authorization:
    return authorizations.parse(
        message.from_address,
        message.to_address,
        message.value,
        message.valid_after,
        message.valid_before,
        message.nonce,
        message.signature,
    )


def mandate_to_proto(mandate: Mandate) -> pb.Mandate:
    return pb.Mandate(
        id=mandate.id,
        subscription_id=mandate.subscription_id,
        user_id=mandate.user_id,
        payer_wallet_address=mandate.payer_wallet_address,
        merchant_wallet_address=mandate.merchant_wallet_address,
        contract_address=mandate.contract_address,
        cap=money(mandate.cap),
        cap_base_units=str(mandate.cap_base_units),
        period_seconds=mandate.period_seconds,
        expire_time=to_timestamp(mandate.expire_time),
        status=pb.MandateStatus.Value(f"MANDATE_STATUS_{mandate.status.value}"),
        transaction_hash=mandate.transaction_hash,
        create_time=to_timestamp(mandate.create_time),
    )


def permit_from_proto(message: pb.Permit) -> PermitTerms:
    if not message.HasField("deadline"):
        raise InvalidArgument("permit.deadline is required", field="permit.deadline")
    return PermitTerms(message.value, from_timestamp(message.deadline), message.signature)


def mandate_contract_to_proto(found: MandateContractInfo) -> pb.MandateContract:
    return pb.MandateContract(
        contract_address=found.contract_address,
        chain_id=found.chain_id,
        merchant_wallet_address=found.merchant_wallet_address,
        token_address=found.token_address,
        token_name=found.token_name,
        token_version=found.token_version,
    )


def credit_grant_to_proto(grant: CreditGrant, now: datetime) -> pb.CreditGrant:
    message = pb.CreditGrant(
        id=grant.id,
        user_id=grant.user_id,
        source=pb.CreditSource.Value(f"CREDIT_SOURCE_{grant.source.value}"),
        amount=money(grant.amount),
        remaining=money(grant.remaining),
        priority=grant.priority,
        description=grant.description,
        reference=grant.reference,
        status=pb.CreditGrantStatus.Value(f"CREDIT_GRANT_STATUS_{grant.status(now).value}"),
        create_time=to_timestamp(grant.create_time),
    )
    if grant.expire_time is not None:
        message.expire_time.CopyFrom(to_timestamp(grant.expire_time))
    return message


def credit_balance_to_proto(user_id: str, found: CreditBalance) -> pb.CreditBalance:
    message = pb.CreditBalance(
        user_id=user_id,
        balance=money(found.balance),
        expiring=money(found.expiring),
        currency="USDC",
    )
    if found.next_expire_time is not None:
        message.next_expire_time.CopyFrom(to_timestamp(found.next_expire_time))
    return message


def grant_terms_from_proto(request: pb.CreateCreditGrantRequest) -> GrantTerms:
    return GrantTerms(
        user_id=request.user_id,
        amount=request.amount,
        priority=request.priority,
        expire_time=from_timestamp(request.expire_time)
        if request.HasField("expire_time")
        else None,
        description=request.description,
        request_id=request.request_id,
    )


def application_from_proto(message: pb.CreditApplication) -> ApplicationRequest:
    return ApplicationRequest(message.key, message.invoice_id, message.user_id, message.amount)
