// Entry point: reads the environment, connects to PostgreSQL, serves the app, stops cleanly.

import { createApp } from "./app.js";
import { PgStore } from "./db.js";
import { logger } from "./logger.js";

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  fail("DATABASE_URL is not set: point it at PostgreSQL, e.g. postgres://postgres:postgres@localhost:5432/[[ entities ]]");
}
if (process.env.AUTH_SECRET === undefined) {
  logger.warn("AUTH_SECRET is not set: using a random secret, so sign-ins end when the server restarts");
} else if (process.env.AUTH_SECRET === "") {
  fail("AUTH_SECRET is empty: set it to a long random string, or unset it");
}
const port = Number(process.env.PORT ?? [[ backend_port ]]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`PORT must be a port number, not "${process.env.PORT}"`);
}
const host = process.env.HOST ?? "127.0.0.1";

let store: PgStore;
try {
  store = await PgStore.connect(databaseUrl);
} catch (error) {
  fail(`cannot prepare the database at DATABASE_URL: ${error instanceof Error ? error.message : String(error)}`);
}

const server = createApp({ store, corsOrigin: process.env.CORS_ORIGIN }).listen(port, host, () => {
  logger.info("listening", { url: `http://${host}:${port}` });
});
server.on("error", (error) => fail(`cannot listen on ${host}:${port}: ${error.message}`));

// Stop accepting requests, finish the ones under way, then close the pool. A repeated signal
// (npm forwards the one it gets too) does not start a second shutdown.
let stopping = false;
function shutdown(signal: string): void {
  if (stopping) {
    return;
  }
  stopping = true;
  logger.info("shutting down", { signal });
  server.close(() => {
    store.close().finally(() => process.exit(0));
  });
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
