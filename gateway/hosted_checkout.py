"""The hosted checkout page a session's `url` points to: plain HTML, escaped by Jinja2.

A usage-only plan starts with one button. A plan paid up front offers "Pay with your wallet"
(gateway/static/wallet.js: the wallet signs the session's payment request as an EIP-3009
authorization, the public relay submits it), and, for a wallet that cannot sign typed data, the
merchant's payout wallet (settlement's record) with a QR code and a form that takes the payer's
wallet and transaction hash. Either payment is verified on chain by settlement, and the page waits
for it. Once the session is complete the page offers "Pay automatically" when the plan has a cap
to propose (gateway/mandate_enrolment.py; gateway/static/autopay.js has the wallet sign the permit
and the mandate, posts them and follows the mandate to ACTIVE) and a link on to successUrl; with
nothing to propose it sends the subscriber to successUrl at once."""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway import mandate_enrolment, payment_requests
from gateway.backends import to_json
from gateway.context import Gateway
from gateway.errors import ApiError
from gateway.mandate_enrolment import Proposal
from gateway.merchants import Merchant
from gateway.pages import qr_code, render
from gateway.public_routes import checkout_owner, limit_client
from service_kit.decimals import format_decimal

router = APIRouter(
    tags=["checkout page"], include_in_schema=False, dependencies=[Depends(limit_client)]
)
MAX_FORM_BYTES = 4096


def _interval(plan: ipb.Plan) -> str:
    unit = ipb.BillingInterval.Name(plan.billing_interval).removeprefix("BILLING_INTERVAL_").lower()
    return unit if plan.interval_count <= 1 else f"{plan.interval_count} {unit}s"


def _model(model: int) -> str:
    return ipb.ChargeModel.Name(model).removeprefix("CHARGE_MODEL_").lower().replace("_", " ")  # type: ignore[arg-type]


def _price(plan: ipb.Plan) -> tuple[str, list[str]]:
    interval = _interval(plan)
    kind = ipb.PricingType.Name(plan.pricing_type)
    charges = [
        f"{c.event_key}: {_model(c.model)}"
        + (f", {c.unit_price} USDC" if c.unit_price else "")
        + (f" per {c.package_size}" if c.package_size else "")
        + (f", first {c.included_quantity} included" if c.included_quantity else "")
        for c in plan.charges
    ]
    if kind == "PRICING_TYPE_USAGE_BASED":
        return (
            f"{plan.amount} USDC per unit, billed each {interval}"
            if plan.amount
            else f"Pay per use, billed each {interval}"
        ), charges
    if kind == "PRICING_TYPE_HYBRID":
        return f"{plan.amount} USDC per {interval} plus usage", charges
    return f"{plan.amount} USDC per {interval}", charges


async def _payee(gateway: Gateway, owner: Merchant) -> str:
    """The wallet the subscriber pays: settlement's record, "" while there is none."""
    backends = gateway.backends
    try:
        found = await backends.call(
            backends.settlement.GetPayoutWallet, spb.GetPayoutWalletRequest(), owner.id
        )
    except ApiError as error:
        if error.status == 404:
            return ""
        raise
    return str(found.wallet_address)


def _days(seconds: int) -> str:
    days = seconds // 86_400
    return "day" if days == 1 else f"{days} days"


async def _render_complete(
    gateway: Gateway, owner: Merchant, session: ipb.CheckoutSession, proposal: Proposal
) -> Response:
    """The session is complete: "Pay automatically" with the proposal in plain words, or the
    subscription's mandate once there is one."""
    backends = gateway.backends
    plan = await backends.call(
        backends.invoicing.GetPlan, ipb.GetPlanRequest(id=session.plan_id), owner.id
    )
    service = await backends.call(
        backends.invoicing.GetService, ipb.GetServiceRequest(id=plan.service_id), owner.id
    )
    price, charges = _price(plan)
    mandate = await mandate_enrolment.mandate_of(gateway, owner, session.subscription_id)
    follow = f"/api/v1/checkout-sessions/{session.id}/mandate"
    expiry = datetime.fromtimestamp(proposal.expiry, UTC)
    context: dict[str, Any] = {
        "merchant": owner,
        "service": service,
        "plan": plan,
        "price": price,
        "charges": charges,
        "complete": True,
        "session": {"successUrl": session.success_url},
        "terms": {
            "cap": format_decimal(proposal.cap),
            "period": _days(proposal.period_seconds),
            "until": f"{expiry:%-d %B %Y, %H:%M} UTC",
            "allowance": format_decimal(Decimal(proposal.allowance).scaleb(-6)),
            "periods": proposal.allowance // proposal.cap_base_units,
            "wallet": proposal.contract.merchant_wallet_address,
        },
        "mandate": to_json(mandate) if mandate else None,
        "autopay": {"proposal": proposal.to_json(), "relay": follow, "follow": follow},
    }
    return render("checkout.html", context)


async def _render(
    gateway: Gateway,
    owner: Merchant,
    session: ipb.CheckoutSession,
    error: str = "",
    status: int = 200,
) -> Response:
    backends = gateway.backends
    plan = await backends.call(
        backends.invoicing.GetPlan, ipb.GetPlanRequest(id=session.plan_id), owner.id
    )
    service = await backends.call(
        backends.invoicing.GetService, ipb.GetServiceRequest(id=plan.service_id), owner.id
    )
    price, charges = _price(plan)
    paid_up_front = Decimal(session.amount_due) > 0
    waiting = session.status == ipb.CHECKOUT_SESSION_STATUS_AWAITING_PAYMENT
    payee = await _payee(gateway, owner) if paid_up_front else ""
    if paid_up_front and not payee:
        error = "This merchant cannot take USDC payments yet: it has no payout wallet."
    payment_request = None
    if payee and not waiting:
        payment_request = await payment_requests.of_checkout(backends, owner.id, session)
    context: dict[str, Any] = {
        "merchant": owner,
        "payee": payee,
        "service": service,
        "plan": plan,
        "price": price,
        "charges": charges,
        "session": {"cancelUrl": session.cancel_url},
        "amount_due": session.amount_due if paid_up_front else "",
        "waiting": waiting,
        "error": error,
        "request": payment_request,
        "qr": qr_code(payment_request["uri"]) if payment_request else "",
        # The relay makes the session wait for the payment: the page reloads to show it.
        "wallet": {
            "request": payment_request,
            "relay": f"/api/v1/checkout-sessions/{session.id}/pay",
            "follow": None,
        },
    }
    return render("checkout.html", context, status)


@router.get("/checkout/{session_id}")
async def checkout_page(request: Request, session_id: str) -> Response:
    gateway: Gateway = request.app.state.gateway
    owner = await checkout_owner(gateway, session_id)
    session = await gateway.backends.call(
        gateway.backends.invoicing.GetCheckoutSession,
        ipb.GetCheckoutSessionRequest(id=session_id),
        owner.id,
    )
    if session.status == ipb.CHECKOUT_SESSION_STATUS_COMPLETE:
        proposal = await mandate_enrolment.offer(gateway, owner, session)
        if proposal is None:
            return RedirectResponse(session.success_url, status_code=303)
        return await _render_complete(gateway, owner, session, proposal)
    return await _render(gateway, owner, session)


@router.post("/checkout/{session_id}")
async def submit_checkout(request: Request, session_id: str) -> Response:
    gateway: Gateway = request.app.state.gateway
    owner = await checkout_owner(gateway, session_id)
    backends = gateway.backends
    body = await request.body()
    form = {k: v[0] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode(errors="replace")).items()}
    session = await backends.call(
        backends.invoicing.GetCheckoutSession,
        ipb.GetCheckoutSessionRequest(id=session_id),
        owner.id,
    )
    try:
        if Decimal(session.amount_due) == 0:
            await backends.call(
                backends.invoicing.CompleteCheckoutSession,
                ipb.CompleteCheckoutSessionRequest(id=session_id),
                owner.id,
            )
            # The page, complete now: auto-pay if the plan proposes it, else successUrl.
            return RedirectResponse(f"/checkout/{session_id}", status_code=303)
        proof = ipb.PaymentProof(
            transaction_hash=form.get("transaction_hash", "").strip(),
            payer_wallet_address=form.get("payer_wallet_address", "").strip(),
        )
        # The settlement first: it refuses a reused or malformed proof before the session
        # commits to waiting for it.
        await backends.call(
            backends.settlement.SubmitSettlement,
            spb.SubmitSettlementRequest(
                checkout_session_id=session_id,
                reference_hash="0x" + hashlib.sha256(session_id.encode()).hexdigest(),
                transaction_hash=proof.transaction_hash,
                payer_wallet_address=proof.payer_wallet_address,
            ),
            owner.id,
        )
        await backends.call(
            backends.invoicing.CompleteCheckoutSession,
            ipb.CompleteCheckoutSessionRequest(id=session_id, payment=proof),
            owner.id,
        )
    except ApiError as error:
        if error.status >= 500:
            raise
        return await _render(gateway, owner, session, error.message, status=error.status)
    return RedirectResponse(f"/checkout/{session_id}", status_code=303)
