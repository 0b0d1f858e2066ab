"""Prometheus exposition: vLLM's own `vllm:*` metrics plus the server's `sla:*` metrics, in one text page."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from vllm.v1.metrics.prometheus import get_prometheus_registry

from sla_engine.engine import Engine


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # per app, so several apps in one process never collide
        r = self.registry
        self.requests = Counter(
            "sla:http_requests", "HTTP requests answered, by route and status.", ["route", "status"], registry=r
        )
        self.in_flight = Gauge("sla:requests_in_flight", "Chat completions being generated now.", registry=r)
        self.disconnects = Counter(
            "sla:client_disconnects", "Streams whose client went away before the end (their generation was aborted).", registry=r
        )
        self.e2e = Histogram(
            "sla:request_seconds",
            "Chat completion wall time, first byte in to last byte out.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160),
            registry=r,
        )
        self.engine_unfinished = Gauge(
            "sla:engine_unfinished_requests", "Requests the vLLM engine front end still tracks.", registry=r
        )
        self.scheduler_running = Gauge(
            "sla:engine_scheduler_running", "Running requests in the engine scheduler at its last step.", registry=r
        )
        self.scheduler_waiting = Gauge(
            "sla:engine_scheduler_waiting", "Waiting requests in the engine scheduler at its last step.", registry=r
        )

    @contextmanager
    def track(self) -> Iterator[None]:
        """Counts a chat completion in flight and observes its wall time."""
        self.in_flight.inc()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.in_flight.dec()
            self.e2e.observe(time.perf_counter() - t0)

    def bind(self, engine: Engine) -> None:
        self.engine_unfinished.set_function(engine.num_unfinished_requests)
        self.scheduler_running.set_function(lambda: engine.scheduler_counts.running)
        self.scheduler_waiting.set_function(lambda: engine.scheduler_counts.waiting)

    def exposition(self) -> bytes:
        return generate_latest(get_prometheus_registry()) + generate_latest(self.registry)
