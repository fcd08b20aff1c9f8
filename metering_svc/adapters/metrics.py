"""Metering's Prometheus metrics: the gRPC calls (service_kit), and the events it ingests."""

from service_kit.metrics import ServiceMetrics


class MeteringMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("metering_svc")
        self._ingested = self.counter(
            "usage_events_ingested", "Usage events stored, counted once their transaction commits."
        )
        self._deduplicated = self.counter(
            "usage_events_deduplicated",
            "Usage events acknowledged as repeats of a stored one (same subscription and "
            "idempotency key), counted once their transaction commits.",
        )

        self._refused_by_limit = self.counter(
            "usage_events_refused_by_limit",
            "Usage events rejected because they would take their key's usage in the billing "
            "period past a HARD limit of the subscription's plan, or its cost past the credits "
            "of a prepaid-only plan.",
        )

    def events_recorded(self, ingested: int, deduplicated: int, refused_by_limit: int) -> None:
        self._ingested.inc(ingested)
        self._deduplicated.inc(deduplicated)
        self._refused_by_limit.inc(refused_by_limit)
