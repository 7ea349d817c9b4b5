import { createHmac, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { NextFunction, Request, Response, Router } from "express";
import { db } from "./db";

const secret = process.env.AUTH_SECRET ?? randomBytes(32).toString("hex");

export function hashPassword(password: string): string {
  const salt = randomBytes(16).toString("hex");
  const hash = scryptSync(password, salt, 64).toString("hex");
  return `${salt}:${hash}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const [salt, hash] = stored.split(":");
  const candidate = scryptSync(password, salt, 64);
  return timingSafeEqual(candidate, Buffer.from(hash, "hex"));
}

export function issueToken(userId: number): string {
  const payload = Buffer.from(JSON.stringify({ sub: userId, iat: Date.now() })).toString("base64url");
  const signature = createHmac("sha256", secret).update(payload).digest("base64url");
  return `${payload}.${signature}`;
}

export function verifyToken(token: string): number | null {
  const [payload, signature] = token.split(".");
  if (!payload || !signature) {
    return null;
  }
  const expected = createHmac("sha256", secret).update(payload).digest("base64url");
  if (expected.length !== signature.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    return null;
  }
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  return typeof claims.sub === "number" ? claims.sub : null;
}

export function requireUser(req: Request, res: Response, next: NextFunction) {
  const header = req.header("authorization") ?? "";
  const userId = header.startsWith("Bearer ") ? verifyToken(header.slice(7)) : null;
  if (userId === null) {
    res.status(401).json({ error: "sign in first" });
    return;
  }
  res.locals.userId = userId;
  next();
}

export const authRouter = Router();

authRouter.post("/register", async (req, res) => {
  const email = String(req.body?.email ?? "").toLowerCase();
  const password = String(req.body?.password ?? "");
  if (!email.includes("@") || password.length < 8) {
    res.status(422).json({ error: "a valid email and a password of 8 or more characters are required" });
    return;
  }
  const result = await db.query("INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id", [
    email,
    hashPassword(password),
  ]);
  res.status(201).json({ token: issueToken(result.rows[0].id) });
});

authRouter.post("/login", async (req, res) => {
  const email = String(req.body?.email ?? "").toLowerCase();
  const result = await db.query("SELECT id, password_hash FROM users WHERE email = $1", [email]);
  const user = result.rows[0];
  if (!user || !verifyPassword(String(req.body?.password ?? ""), user.password_hash)) {
    res.status(401).json({ error: "wrong email or password" });
    return;
  }
  res.json({ token: issueToken(user.id) });
});
