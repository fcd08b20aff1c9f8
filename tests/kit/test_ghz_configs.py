"""The shipped ghz configs call real methods with data that parses into their request message."""

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.protobuf.message_factory import GetMessageClass

from billing.invoicing.v1 import invoicing_pb2
from billing.metering.v1 import metering_pb2
from billing.settlement.v1 import settlement_pb2

CONFIGS = sorted((Path(__file__).parents[2] / "loadtest" / "ghz").glob("*.json"))
FILES = {
    module.DESCRIPTOR.package: module.DESCRIPTOR
    for module in (metering_pb2, invoicing_pb2, settlement_pb2)
}
PORTS = {
    "billing.metering.v1": 50051,
    "billing.invoicing.v1": 50052,
    "billing.settlement.v1": 50053,
}


def test_there_is_a_config_per_hot_rpc() -> None:
    calls = {json.loads(path.read_text())["call"].rsplit(".", 1)[1] for path in CONFIGS}
    assert {"RecordUsageEvent", "BatchRecordUsageEvents", "GetUsageSummary"} <= calls


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_a_config_names_a_method_and_its_data_parses(path: Path) -> None:
    config = json.loads(path.read_text())
    service_name, method_name = config["call"].rsplit(".", 1)
    package, service = service_name.rsplit(".", 1)
    method = FILES[package].services_by_name[service].methods_by_name[method_name]
    request = GetMessageClass(method.input_type)()
    json_format.ParseDict(config["data"], request)
    assert request.ByteSize() > 0
    assert config["host"] == f"127.0.0.1:{PORTS[package]}"
    assert config["metadata"] == {"x-merchant-id": "mer_demo"}
    assert config["insecure"] is True and config["total"] > 0
