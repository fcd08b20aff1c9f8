"""Meters through REST: one read back by id, and only for a service of the merchant's own."""

import httpx

from tests.gateway.conftest import Api, new_merchant


async def test_a_meter_is_read_back_and_needs_a_service_of_the_merchants_own(
    api: Api, database_url: str
) -> None:
    service = (await api.post("/api/v1/services", {"name": "Seats"})).json()
    body = {"serviceId": service["id"], "eventKey": "seats", "aggregation": "MAX"}
    created = (await api.post("/api/v1/meters", {**body, "displayName": "Seats in use"})).json()
    found = await api.get(f"/api/v1/meters/{created['id']}")
    assert found.status_code == 200, found.text
    assert found.json() == created
    assert (created["serviceId"], created["aggregation"], created["displayName"]) == (
        service["id"],
        "MAX",
        "Seats in use",
    )
    missing = await api.get("/api/v1/meters/mtr_missing")
    assert missing.status_code == 404

    unknown = await api.post("/api/v1/meters", {**body, "serviceId": "svc_missing"})
    _, other_key, _ = await new_merchant(database_url, api.platform)
    async with httpx.AsyncClient(
        base_url=str(api.client.base_url),
        headers={"Authorization": f"Bearer {other_key}"},
        trust_env=False,
    ) as other:
        theirs = await other.post("/api/v1/meters", json={**body, "eventKey": "other"})
        their_meters = (await other.get("/api/v1/meters")).json()["data"]
    for refused in (unknown, theirs):
        assert refused.status_code == 404, refused.text
        assert (refused.json()["error"]["type"], refused.json()["error"]["param"]) == (
            "invalid_request_error",
            "serviceId",
        )
    assert their_meters == []
    listed = (await api.get("/api/v1/meters", serviceId=service["id"])).json()["data"]
    assert [m["id"] for m in listed] == [created["id"]]
