"""`make up` as an operator runs it (`python -m devstack up`, every process real), then `make demo`
against it, then a grep of every log line of the run: no API key, webhook secret, service token
or encryption key is ever written, and one request id follows a call from the gateway into
metering."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.postgres import free_port

REPO = Path(__file__).parents[2]
START_TIMEOUT = 120
TRACED = "req-make-up-test"


@dataclass
class Platform:
    workdir: Path
    output: Path
    env: dict[str, str]
    printed: dict[str, str]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_HTTP_PORT']}"

    def log_lines(self, module: str) -> list[dict[str, object]]:
        """The JSON log lines of a module's `serve` process."""
        path = self.workdir / ".devstack" / "logs" / f"{module}.serve.log"
        lines = path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def logs(self) -> str:
        files = sorted((self.workdir / ".devstack" / "logs").glob("*.log"))
        return "".join(f.read_text(errors="replace") for f in [self.output, *files])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("make-up")
    ports = {
        name: str(free_port())
        for name in (
            "BILLING_PG_PORT",
            "BILLING_CHAIN_PORT",
            "METERING_GRPC_PORT",
            "INVOICING_GRPC_PORT",
            "SETTLEMENT_GRPC_PORT",
            "GATEWAY_HTTP_PORT",
            "METERING_METRICS_PORT",
            "INVOICING_METRICS_PORT",
            "SETTLEMENT_METRICS_PORT",
        )
    }
    env = {**os.environ, **ports, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("BILLING_SERVICE_TOKEN", None)
    output = workdir / "make-up.out"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up"],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Ctrl-C stops everything" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        printed = dict(
            re.findall(r"^  (\S+(?: \S+)*?)\s{2,}(\S+)", output.read_text(), re.MULTILINE)
        )
        yield Platform(workdir, output, env, printed)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_the_demo_runs_against_make_up_and_no_secret_reaches_a_log(platform: Platform) -> None:
    key, token = platform.printed["demo API key"], platform.printed["service token"]
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": TRACED}
    with httpx.Client(base_url=platform.api_url, headers=headers, trust_env=False) as client:
        endpoint = client.post(
            "/api/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/nobody-listens", "eventTypes": ["*"]},
        )
        assert endpoint.status_code == 200, endpoint.text
        secret = endpoint.json()["secret"]
        meters = client.get("/api/v1/meters")
        assert meters.status_code == 200
    # The demo needs nothing `make up` wrote in its folder: run it from another.
    elsewhere = platform.workdir / "demo"
    elsewhere.mkdir()
    demo = subprocess.run(
        [sys.executable, "-m", "devstack.demo"],
        cwd=elsewhere,
        env={
            **platform.env,
            "BILLING_API_URL": platform.api_url,
            "BILLING_API_KEY": key,
            "BILLING_CHAIN_URL": f"http://127.0.0.1:{platform.env['BILLING_CHAIN_PORT']}",
            "BILLING_USDC_ADDRESS": platform.printed["MockUSDC"],
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert '"status": "PAID"' in demo.stdout
    assert '"amount": "0.500000"' in demo.stdout
    # The second month, collected under the mandate on the contract `make up` deployed, enrolled
    # as the checkout page does: the plan's ceiling set over REST, the public proposal (5 USDC per
    # 28 days, a permit for 14 periods), the public relay, followed to ACTIVE.
    mandates = platform.printed["mandates"]
    assert f'"contractAddress": "{mandates}"' in demo.stdout
    assert '"autoPayCap": "5.000000"' in demo.stdout
    assert '"allowanceBaseUnits": "70000000"' in demo.stdout
    assert "(polled until mandate.status = ACTIVE)" in demo.stdout
    enrolment = [
        (line["method"], line["status"])
        for line in platform.log_lines("gateway")
        if line.get("route") == "/api/v1/checkout-sessions/{session_id}/mandate"
    ]
    assert enrolment[:2] == [("GET", 200), ("POST", 202)]
    assert set(enrolment[2:]) == {("GET", 200)}
    assert '"amount": "1.200000"' in demo.stdout
    assert '"origin": "MANDATE"' in demo.stdout
    assert "collected under the mandate, invoice PAID" in demo.stdout
    # A fresh chain: the payer started with 1,000 USDC and paid 0.5 by hand, then 1.2 collected.
    lines = demo.stdout.splitlines()
    balances = [line.split() for line in lines if line.startswith(("payer ", "merchant "))]
    assert [(name, was, now) for name, _, was, _, now, *_ in balances] == [
        ("payer", "999,500,000", "998,300,000"),
        ("merchant", "500,000", "1,700,000"),
    ]
    assert balances[0][1] == platform.printed["payer wallet"]
    assert (
        "the mandate's cap left this period (the contract's available): 3,800,000 base units"
        in (lines)
    )
    # Then a plan capped at 100,000 tokens: the check allows 90,000 and refuses 20,000 more, the
    # event past the cap is refused with 409, the 10,000 left fit exactly, the alert at 80% was
    # sent once.
    assert '"reason": "HARD_LIMIT_EXCEEDED"' in demo.stdout
    assert '"remaining": "10000"' in demo.stdout
    assert "(20,000 tokens)\n<== 409" in demo.stdout
    assert '"remaining": "0"' in demo.stdout
    assert "(polled until data.0.eventType = usage.threshold_crossed)" in demo.stdout
    assert '"threshold": "80000"' in demo.stdout
    # Last, a prepaid-only plan: topped up with 0.5 USDC on the hosted page, burned down by
    # 50,000 tokens to exactly zero, and the next token refused.
    assert "(polled until creditBalance = 0.500000)" in demo.stdout
    assert "(30,000 tokens)\n<== 200" in demo.stdout
    assert '"balance": "0.000000"' in demo.stdout
    assert "(1 token)\n<== 409" in demo.stdout
    assert "the subscriber's credits are 0.500000 USDC" in demo.stdout
    assert "burned down to 0.000000 and stopped at zero." in demo.stdout
    state = platform.workdir / ".devstack"
    assert json.loads((state / "mandates.json").read_text())["address"] == mandates

    logs = platform.logs()
    secrets_key = (state / "invoicing-secrets-key").read_text().strip()
    gateway_key = (state / "gateway-secrets-key").read_text().strip()
    printed_once = platform.output.read_text()
    for name, value in {
        "API key": key,
        "API key secret": key.rsplit("_", 1)[1],
        "webhook secret": secret.removeprefix("whsec_"),
        "encryption key": secrets_key,
        "gateway encryption key": gateway_key,
    }.items():
        assert value not in logs.replace(printed_once, ""), f"the {name} was logged"
    # `make up` prints the token once for the operator; no process logs it.
    assert token not in logs.replace(printed_once, "")

    # The request id of the gateway call reaches metering's log of the RPC it made.
    traced = {
        module: [line for line in platform.log_lines(module) if line.get("request_id") == TRACED]
        for module in ("gateway", "metering_svc")
    }
    assert [line["status"] for line in traced["gateway"]] == [200, 200]
    assert len(traced["metering_svc"]) == 1, traced["metering_svc"]


def test_a_second_merchant_is_made_as_make_up_prints_it_with_no_variables(
    platform: Platform,
) -> None:
    [command] = re.findall(r"^  another merchant  (.+)$", platform.output.read_text(), re.M)
    arguments = shlex.split(command)
    assert arguments[:3] == [".venv/bin/python", "-m", "gateway"]
    wallet = arguments[-1]
    bare = {
        name: value
        for name, value in platform.env.items()
        if not name.startswith("GATEWAY_") and name != "BILLING_SERVICE_TOKEN"
    }
    made = subprocess.run(
        [sys.executable, *arguments[1:]],
        cwd=platform.workdir,
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("bk_")
    with httpx.Client(
        base_url=platform.api_url, headers={"Authorization": f"Bearer {key}"}, trust_env=False
    ) as client:
        payout = client.get("/api/v1/payout-wallet")
    assert (payout.status_code, payout.json()["walletAddress"]) == (200, wallet)
    # The file that told the command where the platform is holds the run's token: owner only.
    assert (platform.workdir / ".devstack" / "operator.env").stat().st_mode & 0o777 == 0o600
