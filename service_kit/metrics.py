"""Prometheus metrics of one service, served over HTTP on the service's own metrics port.

Each service instance has its own registry (the tests host several services in one process, and
prometheus_client's default registry is process-global). Every series carries a `service` label.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = structlog.get_logger()

# From 1 ms (a cached read) to 10 s (a deadline).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBE_TIMEOUT_SECONDS = 5.0

# An async query of current values, run when Prometheus scrapes.
Probe = Callable[[], Awaitable[Iterable[Metric]]]


class _ScrapeCollector(Collector):
    """Runs the probes on the service's event loop when a scrape arrives on the HTTP server's
    thread, so gauges are exact at scrape time and cost nothing between scrapes."""

    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def _gather(self) -> list[Metric]:
        families: list[Metric] = []
        for probe in self.probes:
            families += await probe()
        return families

    def collect(self) -> Iterable[Metric]:
        if not self.probes or self.loop is None:
            return []
        future = asyncio.run_coroutine_threadsafe(self._gather(), self.loop)
        try:
            return future.result(PROBE_TIMEOUT_SECONDS)
        except Exception as error:
            future.cancel()
            log.warning("metrics.probe_failed", error=str(error) or type(error).__name__)
            return []


@dataclass(frozen=True)
class MetricsEndpoint:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.shutdown)
        self.server.server_close()


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._scraped = _ScrapeCollector()
        self.registry.register(self._scraped)
        self._requests = Counter(
            "grpc_requests",
            "RPCs handled, by method and status code.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "grpc_request_seconds",
            "Time from the start of an RPC's handler to its status, by method.",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self._requests.labels(self.service, method, code).inc()
        self._latency.labels(self.service, method).observe(seconds)

    def counter(self, name: str, documentation: str) -> Counter:
        """A counter of this service (exposed as `<name>_total`)."""
        counter = Counter(name, documentation, ["service"], registry=self.registry)
        return counter.labels(self.service)

    def gauge(self, name: str, documentation: str, value: float) -> Metric:
        """One value of this service, for a probe to return."""
        family = GaugeMetricFamily(name, documentation, labels=["service"])
        family.add_metric([self.service], value)
        return family

    def counter_value(self, name: str, documentation: str, total: float) -> Metric:
        """A counter whose total is kept elsewhere (in the database, exact across restarts and
        replicas), for a probe to return; exposed as `<name>_total`."""
        family = CounterMetricFamily(name, documentation, labels=["service"])
        family.add_metric([self.service], total)
        return family

    def gauge_by(
        self, name: str, documentation: str, label: str, values: Mapping[str, float]
    ) -> Metric:
        """One value per `label` value (e.g. per status), for a probe to return."""
        family = GaugeMetricFamily(name, documentation, labels=["service", label])
        for key, value in values.items():
            family.add_metric([self.service, key], value)
        return family

    def add_probe(self, probe: Probe) -> None:
        """Gauges computed when scraped."""
        self._scraped.probes.append(probe)

    def serve(self, host: str, port: int) -> MetricsEndpoint:
        """Serves /metrics on host:port (0 picks a free port); call from the service's loop,
        which runs the probes."""
        self._scraped.loop = asyncio.get_running_loop()
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsEndpoint(server, thread)
