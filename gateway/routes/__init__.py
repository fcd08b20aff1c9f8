"""One router module per resource, combined in gateway/app.py."""

from typing import Annotated, Any

from fastapi import Depends, Query

from gateway.context import MerchantRequest, merchant_request

Merchant = Annotated[MerchantRequest, Depends(merchant_request)]
Limit = Annotated[int, Query(ge=1, le=100)]
StartingAfter = Annotated[str, Query(alias="startingAfter", max_length=500)]


def page(data: list[dict[str, Any]], next_token: str) -> dict[str, Any]:
    """A list response: `nextStartingAfter` goes into `startingAfter` for the next page."""
    return {
        "object": "list",
        "data": data,
        "hasMore": bool(next_token),
        "nextStartingAfter": next_token or None,
    }
