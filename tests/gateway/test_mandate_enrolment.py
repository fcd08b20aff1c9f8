"""Auto-pay enrolment over public REST: the plan's usage ceiling (gRPC and REST), the checkout's
proposed mandate, the relay of a signed permit and mandate on anvil, and every refusal with its
exact status and field and nothing relayed or stored."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from google.protobuf.field_mask_pb2 import FieldMask

from billing.invoicing.v1 import invoicing_pb2 as ipb
from devstack import mandate_signature
from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from settlement_svc.service_layer.mandate_events import refresh_mandates
from tests.conftest import COLLECTOR_ACCOUNT, CONFIRMATIONS
from tests.gateway.conftest import Api
from tests.gateway.wallet import PAYER, rpc

DAY = 86_400
LIFETIME = 365 * DAY
# 5 USDC of usage a period above no fee; the 28 days of the shortest month.
CEILING, CAP, PERIOD = "5", 5_000_000, 28 * DAY
# The permit covers the cap of every period a year can hold: ceil(365 / 28) = 14.
ALLOWANCE = 14 * CAP
PERMIT_TYPES = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


async def usage_plan(api: Api, ceiling: str | None = CEILING) -> dict[str, Any]:
    service = (await api.post("/api/v1/services", {"name": "Embeddings"})).json()
    body: dict[str, Any] = {
        "name": "Metered",
        "pricingType": "USAGE_BASED",
        "billingInterval": "MONTH",
        "amount": "0.00001",
    }
    if ceiling is not None:
        body["usageCeiling"] = ceiling
    answer = await api.post(f"/api/v1/services/{service['id']}/plans", body)
    assert answer.status_code == 200, answer.text
    plan: dict[str, Any] = answer.json()
    return plan


async def open_session(
    api: Api, plan: dict[str, Any], user_id: str, success_url: str = "https://m.example/ok"
) -> dict[str, Any]:
    session: dict[str, Any] = (
        await api.post(
            "/api/v1/checkout-sessions",
            {
                "planId": plan["id"],
                "userId": user_id,
                "successUrl": success_url,
                "cancelUrl": "https://m.example/no",
            },
        )
    ).json()
    return session


async def completed_session(api: Api, user_id: str, ceiling: str = CEILING) -> dict[str, Any]:
    """A usage plan with the ceiling, and a completed checkout session for it."""
    plan = await usage_plan(api, ceiling)
    session = await open_session(api, plan, user_id)
    done: dict[str, Any] = (
        await api.post(f"/api/v1/checkout-sessions/{session['id']}/complete", {})
    ).json()
    assert done["status"] == "COMPLETE"
    return done


def public(api: Api) -> httpx.AsyncClient:
    """A client without the API key: the enrolment endpoints are public."""
    return httpx.AsyncClient(base_url=str(api.client.base_url), trust_env=False, timeout=30)


async def view(api: Api, session_id: str) -> dict[str, Any]:
    async with public(api) as client:
        answer = await client.get(f"/api/v1/checkout-sessions/{session_id}/mandate")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def post(api: Api, session_id: str, body: dict[str, Any]) -> httpx.Response:
    async with public(api) as client:
        return await client.post(f"/api/v1/checkout-sessions/{session_id}/mandate", json=body)


async def sign(anvil: Anvil, account: str, data: dict[str, Any]) -> str:
    answer = await rpc(anvil, "eth_signTypedData_v4", [account, json.dumps(data)])
    signature: str = answer["result"]
    return signature


async def enrolment(
    anvil: Anvil,
    usdc: MockUsdc,
    mandates: Mandates,
    proposal: dict[str, Any],
    *,
    account: int = PAYER,
    **overrides: Any,
) -> dict[str, Any]:
    """What the hosted page posts: dev account `account`'s permit and mandate of the proposal,
    signed by anvil (eth_signTypedData_v4), with `overrides` of the mandate's terms."""
    payer = anvil.accounts[account]
    deadline = await usdc.block_time() + 1800
    permit = {
        "owner": payer,
        "spender": proposal["contractAddress"],
        "value": overrides.pop("permit_value", proposal["allowanceBaseUnits"]),
        "nonce": str(await usdc.contract.functions.nonces(payer).call()),
        "deadline": str(deadline),
    }
    permit_data = {
        "types": {"EIP712Domain": mandate_signature.DOMAIN, "Permit": PERMIT_TYPES},
        "primaryType": "Permit",
        "domain": {
            "name": proposal["tokenName"],
            "version": proposal["tokenVersion"],
            "chainId": int(proposal["chainId"]),
            "verifyingContract": proposal["tokenAddress"],
        },
        "message": permit,
    }
    message = {
        "payer": payer,
        "merchant": proposal["merchantWalletAddress"],
        "cap": proposal["capBaseUnits"],
        "period": proposal["periodSeconds"],
        "expiry": proposal["expiry"],
        "nonce": str(await mandates.nonce(payer)),
        "deadline": str(deadline),
        **overrides,
    }
    typed = mandate_signature.typed_data(int(proposal["chainId"]), mandates.address, message)
    return {
        "payer": payer,
        "cap": message["cap"],
        "period": message["period"],
        "expiry": message["expiry"],
        "deadline": str(deadline),
        "signature": await sign(anvil, payer, typed),
        "permit": {
            "value": permit["value"],
            "deadline": str(deadline),
            "signature": await sign(anvil, payer, permit_data),
        },
    }


async def follow(api: Api, usdc: MockUsdc) -> None:
    """Mines the confirmations, then follows the mandate contract to the newest final block."""
    await usdc.mine(CONFIRMATIONS)
    while await refresh_mandates(api.platform.settlements):
        pass


async def collector_nonce(usdc: MockUsdc, anvil: Anvil) -> int:
    collector = usdc.w3.to_checksum_address(anvil.accounts[COLLECTOR_ACCOUNT])
    return int(await usdc.w3.eth.get_transaction_count(collector))


async def mandate_rows(db: asyncpg.Connection, subscription_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM settlement.mandates WHERE subscription_id = $1", subscription_id
    )
    return count


def refusal(answer: httpx.Response) -> tuple[int, str, str | None]:
    error = answer.json()["error"]
    return answer.status_code, error["code"], error["param"]


async def test_a_plans_usage_ceiling_round_trips_over_grpc_and_rest(api: Api) -> None:
    service = (await api.post("/api/v1/services", {"name": "Inference"})).json()
    fixed = {
        "name": "Pro",
        "pricingType": "FIXED_RECURRING",
        "billingInterval": "MONTH",
        "intervalCount": 3,
        "amount": "9.9900005",
        "usageCeiling": "2.5",
    }
    plan = (await api.post(f"/api/v1/services/{service['id']}/plans", fixed)).json()
    # The fee as an invoice bills it (9.990000, half-even), plus the ceiling; three 28-day months.
    assert (plan["usageCeiling"], plan["autoPayCap"], plan["autoPayPeriodSeconds"]) == (
        "2.500000",
        "12.490000",
        str(3 * PERIOD),
    )
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == plan

    changed = await api.client.patch(f"/api/v1/plans/{plan['id']}", json={"usageCeiling": "0.75"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**plan, "usageCeiling": "0.750000", "autoPayCap": "10.740000"}
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json() == changed.json()

    # gRPC: the same plan, and the same change made there.
    stub, metadata = api.platform.invoicing_stub, (("x-merchant-id", api.merchant_id),)
    found = await stub.GetPlan(ipb.GetPlanRequest(id=plan["id"]), metadata=metadata)
    assert (found.usage_ceiling, found.auto_pay_cap, found.auto_pay_period_seconds) == (
        "0.750000",
        "10.740000",
        3 * PERIOD,
    )
    updated = await stub.UpdatePlan(
        ipb.UpdatePlanRequest(
            plan=ipb.Plan(id=plan["id"], usage_ceiling="0"),
            update_mask=FieldMask(paths=["usage_ceiling"]),
        ),
        metadata=metadata,
    )
    assert (updated.usage_ceiling, updated.auto_pay_cap, updated.amount) == (
        "0.000000",
        "9.990000",
        "9.9900005",
    )
    # A usage-only plan without a ceiling proposes nothing; a year is 365 days.
    bare = {"name": "Free", "pricingType": "USAGE_BASED", "billingInterval": "YEAR", "amount": 1}
    usage = (await api.post(f"/api/v1/services/{service['id']}/plans", bare)).json()
    assert (usage["usageCeiling"], usage["autoPayCap"], usage["autoPayPeriodSeconds"]) == (
        "0.000000",
        "0.000000",
        str(365 * DAY),
    )

    for body, param in (
        ({"usageCeiling": "-1"}, "usageCeiling"),
        ({"usageCeiling": "0.0000001"}, "usageCeiling"),
        ({}, "usageCeiling"),
    ):
        refused = await api.client.patch(f"/api/v1/plans/{plan['id']}", json=body)
        assert (refused.status_code, refused.json()["error"]["param"]) == (400, param)
    missing = await api.client.patch("/api/v1/plans/plan_nope", json={"usageCeiling": "1"})
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "id")
    assert (await api.get(f"/api/v1/plans/{plan['id']}")).json()["usageCeiling"] == "0.000000"


async def test_a_subscriber_enrols_with_a_permit_and_a_mandate_relayed_once(
    api: Api, anvil: Anvil, usdc: MockUsdc, mandates: Mandates, db: asyncpg.Connection
) -> None:
    session = await completed_session(api, "u_enrol")
    subscription_id = session["subscriptionId"]
    shown = await view(api, session["id"])
    proposal = shown["proposal"]
    assert shown == {
        "proposal": {
            "subscriptionId": subscription_id,
            "cap": "5.000000",
            "capBaseUnits": str(CAP),
            "periodSeconds": str(PERIOD),
            "expiry": proposal["expiry"],
            "expireTime": proposal["expireTime"],
            "allowanceBaseUnits": str(ALLOWANCE),
            "contractAddress": mandates.address,
            "chainId": "31337",
            "merchantWalletAddress": api.wallet,
            "tokenAddress": usdc.address,
            "tokenName": "USD Coin",
            "tokenVersion": "2",
        },
        "mandate": None,
    }
    completed = datetime.fromisoformat(session["completeTime"])
    assert int(proposal["expiry"]) == int(completed.timestamp()) + LIFETIME

    payer = anvil.accounts[PAYER]
    before = await collector_nonce(usdc, anvil)
    body = await enrolment(anvil, usdc, mandates, proposal)
    answer = await post(api, session["id"], body)
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert (created["status"], created["payerWalletAddress"], created["capBaseUnits"]) == (
        "PENDING",
        payer,
        str(CAP),
    )
    # The permit, then the mandate: two transactions of the collector.
    assert await collector_nonce(usdc, anvil) == before + 2
    # The same signatures again: the same mandate, nothing relayed.
    again = await post(api, session["id"], body)
    assert (again.status_code, again.json()) == (202, created)
    assert await collector_nonce(usdc, anvil) == before + 2

    await follow(api, usdc)
    state = await mandates.mandate(payer, api.wallet)
    assert (state.cap, state.period, state.expiry, state.revoked) == (
        CAP,
        PERIOD,
        int(proposal["expiry"]),
        False,
    )
    allowance = await usdc.contract.functions.allowance(payer, mandates.address).call()
    assert allowance == ALLOWANCE
    over_rest = (await api.get(f"/api/v1/subscriptions/{subscription_id}/mandate")).json()
    assert over_rest == {**created, "status": "ACTIVE"}
    assert (await view(api, session["id"]))["mandate"] == over_rest
    # Once the chain holds it, the same signatures still answer it and relay nothing.
    third = await post(api, session["id"], body)
    assert (third.status_code, third.json()) == (202, over_rest)
    assert await collector_nonce(usdc, anvil) == before + 2
    assert await mandate_rows(db, subscription_id) == 1


async def test_refusals_name_the_field_and_relay_nothing(
    api: Api, anvil: Anvil, usdc: MockUsdc, mandates: Mandates, db: asyncpg.Connection
) -> None:
    # A session not completed yet has no subscription to pay for.
    plan = await usage_plan(api)
    open_one = await open_session(api, plan, "u_open")
    assert (await view(api, open_one["id"])) == {"proposal": None, "mandate": None}
    session = await completed_session(api, "u_refused")
    proposal = (await view(api, session["id"]))["proposal"]
    body = await enrolment(anvil, usdc, mandates, proposal)
    before = await collector_nonce(usdc, anvil)
    payer = anvil.accounts[PAYER]
    state_before = await mandates.mandate(payer, api.wallet)

    not_yet = await post(api, open_one["id"], body)
    assert refusal(not_yet) == (409, "failed_precondition", "sessionId")
    unknown = await post(api, "cs_nope", body)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")

    # Terms other than the proposal's, even signed as such.
    more = await enrolment(anvil, usdc, mandates, proposal, cap=str(CAP + 1))
    assert refusal(await post(api, session["id"], more)) == (400, "invalid_field", "cap")
    longer = await enrolment(anvil, usdc, mandates, proposal, period=str(PERIOD + 1))
    assert refusal(await post(api, session["id"], longer)) == (400, "invalid_field", "period")
    later = await enrolment(
        anvil, usdc, mandates, proposal, expiry=str(int(proposal["expiry"]) + 1)
    )
    assert refusal(await post(api, session["id"], later)) == (400, "invalid_field", "expiry")
    wider = await enrolment(anvil, usdc, mandates, proposal, permit_value=str(ALLOWANCE + 1))
    assert refusal(await post(api, session["id"], wider)) == (400, "invalid_field", "permit.value")

    # Another account's signatures of this payer's terms.
    other = await enrolment(anvil, usdc, mandates, proposal, account=PAYER + 1)
    forged = {**body, "signature": other["signature"]}
    assert refusal(await post(api, session["id"], forged)) == (
        400,
        "invalid_argument",
        "signature",
    )
    forged_permit = {
        **body,
        "permit": {**body["permit"], "signature": other["permit"]["signature"]},
    }
    assert refusal(await post(api, session["id"], forged_permit)) == (
        400,
        "invalid_argument",
        "permit.signature",
    )
    malformed = {**body, "payer": "0x1234"}
    assert refusal(await post(api, session["id"], malformed)) == (
        400,
        "invalid_argument",
        "payer",
    )
    extra = {**body, "merchant": api.wallet}
    assert refusal(await post(api, session["id"], extra))[0] == 400

    # A plan with nothing to collect automatically proposes nothing.
    bare = await completed_session(api, "u_bare", ceiling="0")
    assert (await view(api, bare["id"])) == {"proposal": None, "mandate": None}
    assert refusal(await post(api, bare["id"], body)) == (409, "failed_precondition", "sessionId")

    assert await collector_nonce(usdc, anvil) == before
    assert await mandates.mandate(payer, api.wallet) == state_before
    assert await mandate_rows(db, session["subscriptionId"]) == 0
