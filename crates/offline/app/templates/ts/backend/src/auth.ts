// Accounts: scrypt password hashes, HMAC-signed tokens, and the middleware that checks them.

import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import type { RequestHandler } from "express";
import { HttpError } from "./http.js";
import type { User } from "./models.js";
import type { Store } from "./store.js";

declare global {
  namespace Express {
    interface Locals {
      /** The signed-in user, set by requireUser. */
      user: User;
    }
  }
}

const secret = process.env.AUTH_SECRET ?? randomBytes(32).toString("hex");
const tokenLifetimeSeconds = 7 * 24 * 60 * 60;
const scryptAsync = promisify(scrypt) as (password: string, salt: string, keylen: number) => Promise<Buffer>;

/** "scrypt$<salt>$<hash>", with a random salt per password. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16).toString("hex");
  const hash = await scryptAsync(password, salt, 64);
  return `scrypt$${salt}$${hash.toString("hex")}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !hash) {
    return false;
  }
  const expected = Buffer.from(hash, "hex");
  if (expected.length !== 64) {
    return false;
  }
  const actual = await scryptAsync(password, salt, expected.length);
  return timingSafeEqual(actual, expected);
}

function sign(payload: string): string {
  return createHmac("sha256", secret).update(payload).digest("base64url");
}

/** A token "<payload>.<signature>": the payload names the user and when the token expires. */
export function issueToken(userId: number): string {
  const expires = Math.floor(Date.now() / 1000) + tokenLifetimeSeconds;
  const payload = Buffer.from(JSON.stringify({ sub: userId, exp: expires })).toString("base64url");
  return `${payload}.${sign(payload)}`;
}

/** The user id a token was issued for, or null if it is forged, malformed or expired. */
export function verifyToken(token: string): number | null {
  const [payload, signature, ...rest] = token.split(".");
  if (!payload || !signature || rest.length > 0) {
    return null;
  }
  const expected = Buffer.from(sign(payload));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return null;
  }
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    if (typeof claims !== "object" || claims === null || !("sub" in claims) || !("exp" in claims)) {
      return null;
    }
    const { sub, exp } = claims;
    const live = typeof exp === "number" && exp > Date.now() / 1000;
    return live && typeof sub === "number" && Number.isInteger(sub) && sub > 0 ? sub : null;
  } catch {
    return null;
  }
}

/** Answers 401 unless the request carries a valid token of an existing user. */
export function requireUser(store: Store): RequestHandler {
  return async (req, res, next) => {
    const [scheme, token] = (req.get("authorization") ?? "").split(" ");
    const userId = scheme?.toLowerCase() === "bearer" && token ? verifyToken(token) : null;
    const user = userId === null ? null : await store.findUserById(userId);
    if (user === null) {
      throw new HttpError(401, "missing or invalid token");
    }
    res.locals.user = user;
    next();
  };
}
