// Prometheus metrics: request counts and latencies per route, plus Node's process metrics.
// Served at GET /metrics; monitoring/prometheus.yml scrapes it.

import type { RequestHandler } from "express";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const requests = new Counter({
  name: "http_requests_total",
  help: "HTTP requests answered, by method, route and status",
  labelNames: ["method", "route", "status"] as const,
  registers: [registry],
});

const duration = new Histogram({
  name: "http_request_duration_seconds",
  help: "Time to answer HTTP requests, by method and route",
  labelNames: ["method", "route"] as const,
  registers: [registry],
});

/** Counts and times every request. The route label is the route's pattern, never the raw path. */
export const metricsMiddleware: RequestHandler = (req, res, next) => {
  const stopTimer = duration.startTimer();
  res.on("finish", () => {
    // Routes are declared with their full paths, so req.route.path is the whole pattern.
    const route = req.route ? String(req.route.path) : "unmatched";
    requests.inc({ method: req.method, route, status: String(res.statusCode) });
    stopTimer({ method: req.method, route });
  });
  next();
};

export const metricsHandler: RequestHandler = async (_req, res) => {
  res.type(registry.contentType).send(await registry.metrics());
};
