// POST /api/auth/register and POST /api/auth/login. Routes carry their full paths, so
// metrics and logs name them the same way wherever they are answered.

import { Router } from "express";
import { hashPassword, issueToken, verifyPassword } from "../auth.js";
import { HttpError, readObject, readString } from "../http.js";
import { EmailTakenError, type Store } from "../store.js";

interface Credentials {
  email: string;
  password: string;
}

/** Email and password from a body; registering also checks the rules for new accounts. */
function readCredentials(body: unknown, registering: boolean): Credentials {
  const data = readObject(body);
  const email = readString(data.email, "email", 254).trim().toLowerCase();
  const password = readString(data.password, "password", 128);
  if (registering && !/^[^\s@]+@[^\s@]+$/.test(email)) {
    throw new HttpError(400, "email must be an address like name@example.com");
  }
  if (registering && password.length < 8) {
    throw new HttpError(400, "password must be 8 to 128 characters long");
  }
  return { email, password };
}

export function authRouter(store: Store): Router {
  const router = Router();

  router.post("/api/auth/register", async (req, res) => {
    const { email, password } = readCredentials(req.body, true);
    try {
      const user = await store.createUser(email, await hashPassword(password));
      res.status(201).json({ token: issueToken(user.id), user });
    } catch (error) {
      if (error instanceof EmailTakenError) {
        throw new HttpError(409, "this email is already registered");
      }
      throw error;
    }
  });

  router.post("/api/auth/login", async (req, res) => {
    const { email, password } = readCredentials(req.body, false);
    const found = await store.findUserByEmail(email);
    if (found === null || !(await verifyPassword(password, found.password_hash))) {
      throw new HttpError(401, "wrong email or password");
    }
    const user = { id: found.id, email: found.email };
    res.json({ token: issueToken(user.id), user });
  });

  return router;
}
