"""An invoice's life through REST: a DRAFT's lines, finalize, mark uncollectible, void; each
move allowed once and only from where the invoice is."""

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import subscribe, usage_plan


async def test_a_draft_is_read_line_by_line_then_finalized_written_off_and_voided(
    api: Api,
) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan)
    body = {
        "subscriptionId": subscription["id"],
        "paymentPlanId": plan["id"],
        "amount": "12.5",
        "draft": True,
    }
    draft = (await api.post("/api/v1/invoices", body)).json()
    assert (draft["status"], draft["amount"], "dueTime" in draft) == ("DRAFT", "12.500000", False)
    lines = await api.get(f"/api/v1/invoices/{draft['id']}/lines")
    assert lines.status_code == 200, lines.text
    assert lines.json() == {
        "object": "list",
        "data": [
            {
                "description": "Amount computed by the merchant",
                "eventKey": "",
                "quantity": "1",
                "amount": "12.500000",
            }
        ],
        "hasMore": False,
        "nextStartingAfter": None,
    }

    async def move(action: str) -> tuple[int, str]:
        response = await api.post(f"/api/v1/invoices/{draft['id']}/{action}", {})
        data = response.json()
        return response.status_code, data.get("status") or data["error"]["code"]

    assert await move("mark-uncollectible") == (409, "failed_precondition")
    assert await move("finalize") == (200, "OPEN")
    opened = (await api.get(f"/api/v1/invoices/{draft['id']}")).json()
    assert "dueTime" in opened and "finalizeTime" in opened
    assert await move("finalize") == (409, "failed_precondition")
    assert await move("mark-uncollectible") == (200, "UNCOLLECTIBLE")
    assert await move("void") == (200, "VOID")
    assert await move("void") == (409, "failed_precondition")
    assert await move("finalize") == (409, "failed_precondition")

    # A DRAFT may be voided without ever being owed; an unknown invoice is 404.
    other = (await api.post("/api/v1/invoices", {**body, "amount": "1"})).json()
    voided = await api.post(f"/api/v1/invoices/{other['id']}/void", {})
    assert (voided.status_code, voided.json()["status"]) == (200, "VOID")
    for action in ("finalize", "void", "mark-uncollectible"):
        missing = await api.post(f"/api/v1/invoices/in_missing/{action}", {})
        assert missing.status_code == 404
    assert (await api.get("/api/v1/invoices/in_missing/lines")).status_code == 404
