"""Prometheus metrics: request counts and latencies per route, plus the process metrics of
prometheus_client. Served at GET /metrics; monitoring/prometheus.yml scrapes it."""

import time
from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.base import RequestResponseEndpoint

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route and status",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer HTTP requests, by method and route",
    ["method", "route"],
)


async def track_requests(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Counts and times every request. The route label is the route's pattern, never the raw path."""
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        label = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, label, str(status)).inc()
        DURATION.labels(request.method, label).observe(time.perf_counter() - started)


def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
