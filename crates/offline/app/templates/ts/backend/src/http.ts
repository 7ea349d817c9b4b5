// HTTP plumbing shared by the routes: errors as {"error": message}, path ids, request bodies.

import type { ErrorRequestHandler, RequestHandler } from "express";
import { logger } from "./logger.js";

/** A parsed JSON object (a request body). */
export type JsonObject = { [key: string]: unknown };

/** An error the client caused or may know about: answered with its status and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The largest id PostgreSQL's `integer` (and `serial`) can hold. */
export const MAX_ID = 2147483647;

/** A path id: a positive integer that fits the database, or a 400. */
export function parseId(raw: string): number {
  const id = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : 0;
  if (id < 1 || id > MAX_ID) {
    throw new HttpError(400, "id must be a positive integer");
  }
  return id;
}

/** The request body as a JSON object, or a 400 (arrays, strings, numbers and no body). */
export function readObject(body: unknown): JsonObject {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "request body must be a JSON object");
  }
  return body as JsonObject;
}

/** NUL (PostgreSQL cannot store it) and lone UTF-16 surrogates (not valid Unicode). */
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A string of valid, storable text, or a 400. */
export function readString(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== "string" || value.length > maxLength || unstorable.test(value)) {
    throw new HttpError(400, `${name} must be a string of at most ${maxLength} characters`);
  }
  return value;
}

/** Lets a browser on `origin` call the API (for a frontend served from another address). */
export function cors(origin: string): RequestHandler {
  return (req, res, next) => {
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    if (req.method === "OPTIONS") {
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
      res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.status(204).end();
      return;
    }
    next();
  };
}

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json({ error: "not found" });
};

/** The last middleware: every error becomes a JSON answer; only unexpected ones are 500. */
export const errorHandler: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (res.headersSent) {
    next(error);
    return;
  }
  if (error instanceof HttpError) {
    res.status(error.status).json({ error: error.message });
    return;
  }
  if (isBodyParserError(error)) {
    // express.json() rejected the body: invalid JSON, too large, wrong encoding.
    const message = error.type === "entity.parse.failed" ? "request body is not valid JSON" : error.message;
    res.status(400).json({ error: message });
    return;
  }
  logger.error("unexpected error", { error: error instanceof Error ? error.stack : String(error) });
  res.status(500).json({ error: "internal server error" });
};

function isBodyParserError(error: unknown): error is Error & { type: string } {
  return error instanceof Error && "type" in error && typeof error.type === "string" && "expose" in error;
}
