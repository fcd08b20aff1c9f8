"""Auto-pay enrolment at the hosted checkout: the mandate proposed to a new subscriber, and the
public relay of the one its wallet signs.

The proposal comes from the platform's records, never from the request: the session's plan
(invoicing's `autoPayCap`, the fee plus the merchant's usage ceiling, and `autoPayPeriodSeconds`),
the session's subscription and completion (the mandate lasts `GATEWAY_MANDATE_LIFETIME_DAYS` from
it, so a session always proposes the same expiry), and settlement's mandate contract, chain, token
and the merchant's payout wallet. The wallet signs an EIP-2612 permit for the cap of every period
the mandate can have, and the mandate; settlement relays both from its collector, so the payer
needs no ether. A body whose terms are not the proposal's is refused, naming the field.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway import responses as r
from gateway.backends import to_json
from gateway.context import Gateway
from gateway.errors import ApiError
from gateway.merchants import Merchant
from gateway.public_routes import checkout_owner, public_router
from gateway.schemas import MandateEnrolment
from service_kit.proto_time import to_timestamp

router = public_router("auto-pay enrolment (public)")
BASE_UNITS = 1_000_000
DAY_SECONDS = 86_400
# The last second a protobuf Timestamp holds (9999-12-31T23:59:59Z).
MAX_UNIX = 253_402_300_799
# The body's field of each of settlement's (as errors.camel spells them).
_BODY_FIELD = {
    "payerWalletAddress": "payer",
    "capBaseUnits": "cap",
    "periodSeconds": "period",
    "expireTime": "expiry",
    "subscriptionId": "sessionId",
}


@dataclass(frozen=True)
class Proposal:
    """The mandate a session's subscriber is asked to sign: base units, seconds, unix time."""

    subscription_id: str
    cap: Decimal
    period_seconds: int
    expiry: int
    # The permit's value: the cap of every period the mandate can have.
    allowance: int
    contract: spb.MandateContract

    @property
    def cap_base_units(self) -> int:
        return int(self.cap * BASE_UNITS)

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "cap": f"{self.cap:.6f}",
            "capBaseUnits": str(self.cap_base_units),
            "periodSeconds": str(self.period_seconds),
            "expiry": str(self.expiry),
            "expireTime": to_timestamp(datetime.fromtimestamp(self.expiry, UTC)).ToJsonString(),
            "allowanceBaseUnits": str(self.allowance),
            "contractAddress": self.contract.contract_address,
            "chainId": str(self.contract.chain_id),
            "merchantWalletAddress": self.contract.merchant_wallet_address,
            "tokenAddress": self.contract.token_address,
            "tokenName": self.contract.token_name,
            "tokenVersion": self.contract.token_version,
        }


def _refused(message: str) -> ApiError:
    return ApiError(409, "conflict_error", "failed_precondition", message, "sessionId")


async def propose(gateway: Gateway, owner: Merchant, session: ipb.CheckoutSession) -> Proposal:
    """The session's proposal; 409 naming sessionId while there is none to make."""
    backends = gateway.backends
    if session.status != ipb.CHECKOUT_SESSION_STATUS_COMPLETE or not session.subscription_id:
        raise _refused(f"checkout session {session.id} has no subscription yet: complete it first")
    plan = await backends.call(
        backends.invoicing.GetPlan, ipb.GetPlanRequest(id=session.plan_id), owner.id
    )
    cap = Decimal(plan.auto_pay_cap or "0")
    if cap <= 0:
        raise _refused("the plan has no fee and no usage ceiling: nothing to pay automatically")
    contract = await backends.call(
        backends.settlement.GetMandateContract, spb.GetMandateContractRequest(), owner.id
    )
    lifetime = gateway.settings.mandate_lifetime_days * DAY_SECONDS
    period = plan.auto_pay_period_seconds
    return Proposal(
        subscription_id=session.subscription_id,
        cap=cap,
        period_seconds=period,
        expiry=session.complete_time.seconds + lifetime,
        allowance=int(cap * BASE_UNITS) * -(-lifetime // period),
        contract=contract,
    )


async def offer(gateway: Gateway, owner: Merchant, session: ipb.CheckoutSession) -> Proposal | None:
    """The proposal, or None when the session has none (the page then offers nothing)."""
    try:
        return await propose(gateway, owner, session)
    except ApiError as error:
        if error.status == 409:
            return None
        raise


async def mandate_of(gateway: Gateway, owner: Merchant, subscription_id: str) -> spb.Mandate | None:
    backends = gateway.backends
    try:
        return await backends.call(
            backends.settlement.GetMandate,
            spb.GetMandateRequest(subscription_id=subscription_id),
            owner.id,
        )
    except ApiError as error:
        if error.status == 404:
            return None
        raise


async def _session(gateway: Gateway, session_id: str) -> tuple[Merchant, ipb.CheckoutSession]:
    owner = await checkout_owner(gateway, session_id)
    backends = gateway.backends
    session = await backends.call(
        backends.invoicing.GetCheckoutSession,
        ipb.GetCheckoutSessionRequest(id=session_id),
        owner.id,
    )
    return owner, session


def _integer(text: str, field: str, upper: int = 2**256 - 1) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > upper:
        raise ApiError(
            400,
            "invalid_request_error",
            "invalid_field",
            f"{field} must be a decimal integer of at most {upper}",
            field,
        )
    return int(text)


def _differs(field: str, expected: int) -> ApiError:
    return ApiError(
        400,
        "invalid_request_error",
        "invalid_field",
        f"{field} is not the checkout's proposal ({expected})",
        field,
    )


def _moment(text: str, field: str) -> Any:
    return to_timestamp(datetime.fromtimestamp(_integer(text, field, MAX_UNIX), UTC))


def _create_request(proposal: Proposal, body: MandateEnrolment) -> spb.CreateMandateRequest:
    """Settlement's request of the body, once its terms are the proposal's."""
    terms = {
        "cap": proposal.cap_base_units,
        "period": proposal.period_seconds,
        "expiry": proposal.expiry,
    }
    for field, expected in terms.items():
        if _integer(getattr(body, field), field) != expected:
            raise _differs(field, expected)
    request = spb.CreateMandateRequest(
        subscription_id=proposal.subscription_id,
        payer_wallet_address=body.payer,
        cap_base_units=proposal.cap_base_units,
        period_seconds=proposal.period_seconds,
        expire_time=_moment(body.expiry, "expiry"),
        deadline=_moment(body.deadline, "deadline"),
        signature=body.signature,
    )
    if body.permit is not None:
        if _integer(body.permit.value, "permit.value") != proposal.allowance:
            raise _differs("permit.value", proposal.allowance)
        request.permit.CopyFrom(
            spb.Permit(
                value=body.permit.value,
                deadline=_moment(body.permit.deadline, "permit.deadline"),
                signature=body.permit.signature,
            )
        )
    return request


@router.get("/checkout-sessions/{session_id}/mandate", **r.public(r.CheckoutMandate, 200))
async def checkout_mandate(request: Request, session_id: str) -> Any:
    """The mandate the hosted checkout proposes to the session's subscriber (null before the
    session is complete, or when auto-pay has nothing to pay), and the subscription's mandate as
    the chain last showed it (null before one is relayed): the page follows it to ACTIVE."""
    gateway: Gateway = request.app.state.gateway
    owner, session = await _session(gateway, session_id)
    proposal = await offer(gateway, owner, session)
    mandate = await mandate_of(gateway, owner, session.subscription_id) if proposal else None
    return {
        "proposal": proposal.to_json() if proposal else None,
        "mandate": to_json(mandate) if mandate else None,
    }


@router.post("/checkout-sessions/{session_id}/mandate", **r.public(r.Mandate))
async def enrol(request: Request, session_id: str, payload: MandateEnrolment) -> Any:
    """Relays the subscriber's signed mandate of the proposal (`GET` of this path), with its
    permit, from the platform's collector; answers the PENDING mandate, ACTIVE once the contract
    holds it. The same mandate again answers the same mandate and relays nothing. 409 naming
    sessionId while the session has no subscription (or nothing to pay automatically); 400 naming
    `cap`, `period`, `expiry` or `permit.value` when it is not the proposal's, `signature` or
    `permit.signature` when the contract or the token would refuse it."""
    gateway: Gateway = request.app.state.gateway
    owner, session = await _session(gateway, session_id)
    proposal = await propose(gateway, owner, session)
    create = _create_request(proposal, payload)
    backends = gateway.backends
    try:
        created = await backends.call(backends.settlement.CreateMandate, create, owner.id)
    except ApiError as error:
        # errors.camel keeps a field's last part: settlement's permit.signature arrives as
        # "signature", and only the permit's refusals speak of the permit.
        if error.param and "permit" in error.message:
            error.param = f"permit.{error.param}"
        error.param = _BODY_FIELD.get(error.param, error.param)
        raise
    return to_json(created)
