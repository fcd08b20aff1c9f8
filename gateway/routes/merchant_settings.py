"""The merchant's settings: what dunning does after the last failed collection attempt."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.routes import Merchant, merchant_router
from gateway.schemas import MerchantSettingsUpdate

router = merchant_router("merchant settings")


@router.get("/merchant-settings", **r.documented(r.MerchantSettings))
async def get_merchant_settings(merchant: Merchant) -> Any:
    """The defaults until one is changed (`updateTime` absent)."""
    stub = merchant.gateway.backends.invoicing
    return await merchant.answer(stub.GetMerchantSettings, pb.GetMerchantSettingsRequest())


@router.patch("/merchant-settings", **r.documented(r.MerchantSettings))
async def update_merchant_settings(merchant: Merchant, payload: MerchantSettingsUpdate) -> Any:
    """`dunningFinalAction`: after the last failed collection attempt of an invoice, CANCEL
    cancels its subscription now; PAST_DUE (the default) leaves it PAST_DUE."""
    action = pb.DunningFinalAction.Value(f"DUNNING_FINAL_ACTION_{payload.dunning_final_action}")
    request = pb.UpdateMerchantSettingsRequest(
        settings=pb.MerchantSettings(dunning_final_action=action)
    )
    stub = merchant.gateway.backends.invoicing
    return await merchant.created(lambda: merchant.answer(stub.UpdateMerchantSettings, request))
