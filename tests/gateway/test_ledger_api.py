"""The merchant's own ledger through REST: balances, journal entries and the reconciliation
report, once an invoice is posted."""

from tests.gateway.conftest import Api
from tests.gateway.test_rest_api import relay, subscribe, usage_plan


async def test_an_invoice_shows_in_the_balances_entries_and_a_clean_reconciliation(
    api: Api,
) -> None:
    _, plan = await usage_plan(api)
    subscription = await subscribe(api, plan, "usr_ledger")
    invoice = (
        await api.post(
            "/api/v1/invoices",
            {"subscriptionId": subscription["id"], "paymentPlanId": plan["id"], "amount": "3.5"},
        )
    ).json()
    await relay(api.platform)

    async def balances(*accounts: str) -> list[tuple[str, str]]:
        found = await api.client.get("/api/v1/ledger/balances", params={"account": accounts})
        assert found.status_code == 200, found.text
        return [(b["account"], b["debitBalance"]) for b in found.json()["data"]]

    default = await api.get("/api/v1/ledger/balances")
    assert [(b["account"], b["debitBalance"]) for b in default.json()["data"]] == [
        ("revenue", "-3.500000"),
        ("usdc_received", "0.000000"),
    ]
    assert await balances("receivable:usr_ledger", "credit:usr_ledger") == [
        ("receivable:usr_ledger", "3.500000"),
        ("credit:usr_ledger", "0.000000"),
    ]
    entries = (await api.get("/api/v1/ledger/entries")).json()
    assert entries["hasMore"] is False
    assert sorted(
        (e["kind"], e["reference"], e["account"], e["debit"], e["credit"]) for e in entries["data"]
    ) == [
        ("invoice", invoice["id"], "receivable:usr_ledger", "3.500000", "0.000000"),
        ("invoice", invoice["id"], "revenue", "0.000000", "3.500000"),
    ]
    only = (await api.get("/api/v1/ledger/entries", account="revenue")).json()["data"]
    assert [e["account"] for e in only] == ["revenue"]

    report = await api.get("/api/v1/ledger/reconciliation")
    assert report.status_code == 200, report.text
    assert report.json() == {"differences": [], "invoicesChecked": "1", "settlementsChecked": "0"}

    bad = await api.get("/api/v1/ledger/balances", account="savings")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "account")
