// The Express application: JSON bodies, metrics, /health, the API routes and JSON errors.
// It takes its store as a parameter: PostgreSQL in production, memory in the tests.

import express, { type Express } from "express";
import { cors, errorHandler, notFound } from "./http.js";
import { metricsHandler, metricsMiddleware } from "./metrics.js";
import { authRouter } from "./routes/auth.js";
import { [[ entities ]]Router } from "./routes/[[ entities ]].js";
import type { Store } from "./store.js";

export interface AppOptions {
  store: Store;
  /** Set to let a browser app served from that origin call the API (CORS). */
  corsOrigin?: string;
}

export function createApp({ store, corsOrigin }: AppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(metricsMiddleware);
  if (corsOrigin) {
    app.use(cors(corsOrigin));
  }
  app.use(express.json({ limit: "100kb" }));

  app.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/metrics", metricsHandler);
  app.use(authRouter(store));
  app.use([[ entities ]]Router(store));

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
