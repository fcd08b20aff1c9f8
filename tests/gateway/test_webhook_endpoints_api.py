"""Webhook endpoints a merchant manages through REST: changed, sent a test event, its secret
rolled with a grace (both signatures sent), disabled and enabled, a delivery retried, deleted;
each delivery received by a real HTTP server on loopback."""

import json
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from devstack.postgres import free_port
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from tests.gateway.conftest import Api
from tests.invoicing.receiver import Receiver


async def test_an_endpoint_is_changed_tested_rolled_disabled_retried_and_deleted(
    api: Api,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    created = (
        await api.post(
            "/api/v1/webhook-endpoints",
            {"url": "https://m.example/old", "eventTypes": ["invoice.paid"], "description": "old"},
        )
    ).json()
    endpoint = f"/api/v1/webhook-endpoints/{created['id']}"
    assert created["description"] == "old"

    changed = await api.post(endpoint, {"url": url, "description": "Billing hooks"})
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("url", "eventTypes", "description", "secret")} == {
        "url": url,
        "eventTypes": ["invoice.paid"],
        "description": "Billing hooks",
        "secret": "",
    }
    refusals = [
        await api.post(endpoint, {"eventTypes": ["invoice.eaten"]}),
        await api.post(endpoint, {}),
        await api.post(endpoint, {"url": "ftp://m.example/x"}),
    ]
    assert [(r.status_code, r.json()["error"]["param"]) for r in refusals] == [
        (400, "eventTypes"),
        (400, "updateMask"),
        (400, "url"),
    ]

    with Receiver(port) as receiver:
        test = await api.post(f"{endpoint}/test", {})
        assert test.status_code == 200, test.text
        assert (test.json()["eventType"], test.json()["status"]) == (
            "webhook_endpoint.test",
            "PENDING",
        )
        await deliver_due_webhooks(api.platform.invoicing)
        [(headers, body)] = receiver.received
        assert json.loads(body)["type"] == "webhook_endpoint.test"
        assert json.loads(body)["data"] == {"id": created["id"]}
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        old = Webhook(created["secret"])
        assert headers["webhook-signature"] == old.sign(headers["webhook-id"], sent_at, body)

        rolled = (await api.post(f"{endpoint}/roll-secret", {})).json()
        assert rolled["secret"].startswith("whsec_") and rolled["secret"] != created["secret"]
        expires = datetime.fromisoformat(rolled["previousSecretExpireTime"])
        assert expires == api.platform.clock.now() + timedelta(hours=24)
        await api.post(f"{endpoint}/test", {})
        await deliver_due_webhooks(api.platform.invoicing)
        headers, body = receiver.received[1]
        sent_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        new = Webhook(rolled["secret"])
        assert headers["webhook-signature"].split(" ") == [
            new.sign(headers["webhook-id"], sent_at, body),
            old.sign(headers["webhook-id"], sent_at, body),
        ]

        disabled = (await api.post(f"{endpoint}/disable", {})).json()
        assert disabled["status"] == "DISABLED"
        refused = await api.post(f"{endpoint}/test", {})
        delivered = test.json()["id"]
        retry_disabled = await api.post(f"{endpoint}/deliveries/{delivered}/retry", {})
        for answer in (refused, retry_disabled):
            assert (answer.status_code, answer.json()["error"]["param"]) == (409, "endpointId")
        enabled = (await api.post(f"{endpoint}/enable", {})).json()
        assert (enabled["status"], "disableTime" in enabled) == ("ENABLED", False)

        retried = await api.post(f"{endpoint}/deliveries/{delivered}/retry", {})
        assert (retried.status_code, retried.json()["status"]) == (200, "PENDING")
        await deliver_due_webhooks(api.platform.invoicing)
        assert len(receiver.received) == 3
        assert receiver.received[2][0]["webhook-id"] == receiver.received[0][0]["webhook-id"]
    deliveries = (await api.get(f"{endpoint}/deliveries")).json()["data"]
    first = next(d for d in deliveries if d["id"] == delivered)
    assert (first["status"], [a["statusCode"] for a in first["attempts"]]) == (
        "SUCCEEDED",
        [204, 204],
    )
    unknown = await api.post(f"{endpoint}/deliveries/whd_missing/retry", {})
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (404, "deliveryId")

    deleted = await api.client.delete(endpoint)
    assert (deleted.status_code, deleted.json()) == (200, {"id": created["id"], "deleted": True})
    listed = (await api.get("/api/v1/webhook-endpoints")).json()["data"]
    assert created["id"] not in [e["id"] for e in listed]
    gone = [
        await api.client.delete(endpoint),
        await api.get(f"{endpoint}/deliveries"),
        await api.post(endpoint, {"description": "x"}),
    ]
    assert [r.status_code for r in gone] == [404, 404, 404]
