"""docker-compose.yml, validated by the real compose binary (`config`, no engine needed) and held
to the same processes `make up` starts (devstack/runner.py)."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack import deploy_mandates, deploy_usdc
from devstack.chain import Anvil
from devstack.compose_tool import compose_binary
from devstack.mandates import Mandates
from devstack.runner import COLLECTOR_ACCOUNT, GATEWAY, GRPC_SERVICES, RELAYER_ACCOUNT

REPO = Path(__file__).parents[2]
MODULES = [service.module for service in [*GRPC_SERVICES, GATEWAY]]


def _compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(REPO / "docker-compose.yml"),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _example_variables() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{name}=value-of-{name}\n" for name in _example_variables()))
    done = _compose(env_file, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _app_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run this repository's image, by the module their command runs."""
    found = {}
    for service in config["services"].values():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"] and command[2] in MODULES:
            found[command[2]] = service
    return found


def test_every_process_of_make_up_runs_from_the_one_image(config: dict[str, Any]) -> None:
    apps = _app_services(config)
    assert sorted(apps) == sorted(MODULES)
    assert {(s["image"], s["build"]["dockerfile"]) for s in apps.values()} == {
        ("usdc-billing:local", "Dockerfile")
    }
    migrate = " ".join(config["services"]["migrate"]["command"])
    assert [m for m in MODULES if f"python -m {m} migrate" not in migrate] == []


def test_services_find_each_other_and_their_database(config: dict[str, Any]) -> None:
    apps = _app_services(config)
    ports = {}
    for name, service in config["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if variable.endswith(("_GRPC_PORT", "_HTTP_PORT")):
                ports[name] = value
    for module, service in apps.items():
        environment = service["environment"]
        prefix = module.split("_")[0].upper()
        assert environment[f"{prefix}_DATABASE_URL"].endswith("@postgres:5432/billing"), module
        assert environment["BILLING_SERVICE_TOKEN"] == "value-of-BILLING_SERVICE_TOKEN"
        for variable, value in environment.items():
            if variable.endswith("_ADDRESS") and ":" in value:
                host, port = value.split(":")
                assert ports.get(host) == port, f"{module}: {variable}={value}"
    gateway = apps["gateway"]["environment"]
    assert {v for k, v in gateway.items() if k.endswith("_ADDRESS")} == {
        "metering:50051",
        "invoicing:50052",
        "settlement:50053",
    }


def test_ports_health_and_start_order(config: dict[str, Any]) -> None:
    services = config["services"]
    published = [(p["host_ip"], name) for name, s in services.items() for p in s.get("ports", [])]
    assert published and {host for host, _ in published} == {"127.0.0.1"}
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        assert one_shot or "healthcheck" in service, f"{name} has no healthcheck"
    conditions = {
        name: {dep: d["condition"] for dep, d in (s.get("depends_on") or {}).items()}
        for name, s in services.items()
    }
    assert conditions["migrate"] == {"postgres": "service_healthy"}
    for name in ("metering", "invoicing", "settlement"):
        assert conditions[name]["migrate"] == "service_completed_successfully"
    # MockUSDC, then the mandate contract for it, then settlement, which uses both.
    assert conditions["deploy-usdc"] == {"anvil": "service_healthy"}
    assert conditions["deploy-mandates"] == {"deploy-usdc": "service_completed_successfully"}
    assert conditions["settlement"] == {
        "migrate": "service_completed_successfully",
        "deploy-usdc": "service_completed_successfully",
        "deploy-mandates": "service_completed_successfully",
    }
    assert conditions["gateway"] == {
        "metering": "service_healthy",
        "invoicing": "service_healthy",
        "settlement": "service_healthy",
    }


def test_every_secret_must_come_from_the_env_file(tmp_path: Path) -> None:
    for missing in _example_variables():
        env_file = tmp_path / ".env"
        env_file.write_text(
            "".join(f"{name}=x\n" for name in _example_variables() if name != missing)
        )
        done = _compose(env_file, "config", "--quiet")
        assert done.returncode != 0
        assert f"required variable {missing} is missing a value" in done.stderr


def _mounted(service: dict[str, Any]) -> dict[str, str]:
    """The secrets a service mounts, by where it reads them."""
    return {secret["target"]: secret["source"] for secret in service.get("secrets", [])}


def _key(path: str) -> str:
    return Path(path).read_text().strip()


async def test_the_chain_jobs_and_keys_match_what_settlement_is_told(
    config: dict[str, Any],
) -> None:
    services, files = config["services"], config["secrets"]
    settlement = services["settlement"]
    environment = settlement["environment"]
    assert _mounted(settlement) == {
        "/run/secrets/relayer_key": "relayer_key",
        "/run/secrets/collector_key": "collector_key",
    }
    assert environment["SETTLEMENT_RELAYER_PRIVATE_KEY_FILE"] == "/run/secrets/relayer_key"
    assert environment["SETTLEMENT_COLLECTOR_PRIVATE_KEY_FILE"] == "/run/secrets/collector_key"
    assert {name: Path(secret["file"]) for name, secret in files.items()} == {
        "relayer_key": REPO / "devstack" / "secrets" / "anvil-relayer.key",
        "collector_key": REPO / "devstack" / "secrets" / "anvil-collector.key",
    }
    # The mandate job deploys for the collector of the very key file settlement reads.
    job = services["deploy-mandates"]
    assert _mounted(job) == {"/run/secrets/collector_key": "collector_key"}
    usdc_default = environment["SETTLEMENT_USDC_CONTRACT_ADDRESS"]
    mandates_default = environment["SETTLEMENT_MANDATES_CONTRACT_ADDRESS"]
    assert job["command"] == [
        "python",
        "-m",
        "devstack.deploy_mandates",
        "http://anvil:8545",
        usdc_default,
        "/run/secrets/collector_key",
    ]
    assert services["deploy-usdc"]["command"][2:] == ["devstack.deploy_usdc", "http://anvil:8545"]

    # On a fresh anvil the key files are dev accounts 9 and 7, and the two jobs run in their
    # order leave the contracts where settlement's defaults say, the collector that of the file.
    chain = Anvil()
    chain.start()
    try:
        assert _key(files["relayer_key"]["file"]) == chain.private_keys[RELAYER_ACCOUNT]
        assert _key(files["collector_key"]["file"]) == chain.private_keys[COLLECTOR_ACCOUNT]
        usdc = await deploy_usdc.deploy(chain.url)
        collector = deploy_mandates.collector_address(files["collector_key"]["file"])
        assert collector == chain.accounts[COLLECTOR_ACCOUNT]
        assert (usdc, await deploy_mandates.deploy(chain.url, usdc, collector)) == (
            usdc_default,
            mandates_default,
        )
        deployed = Mandates.at(chain.url, mandates_default)
        assert await deployed.collector() == collector
        assert await deployed.contract.functions.token().call() == usdc_default
        await deployed.close()
    finally:
        chain.stop()
