"""Accounts: password hashing, signed tokens and the current-user dependency."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel

from app.db import pool

SECRET = os.environ.get("AUTH_SECRET") or secrets.token_hex(32)
router = APIRouter()


class Credentials(BaseModel):
    email: str
    password: str


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()
    return f"{salt}:{digest}"


def verify_password(password: str, stored: str) -> bool:
    salt, digest = stored.split(":", 1)
    candidate = hashlib.scrypt(password.encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()
    return hmac.compare_digest(candidate, digest)


def issue_token(user_id: int) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"sub": user_id, "iat": int(time.time())}).encode()).decode()
    signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}"


def current_user(authorization: str = Header(default="")) -> int:
    token = authorization.removeprefix("Bearer ")
    payload, _, signature = token.partition(".")
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not payload or not hmac.compare_digest(expected, signature):
        raise HTTPException(status_code=401, detail="sign in first")
    return int(json.loads(base64.urlsafe_b64decode(payload))["sub"])


@router.post("/register", status_code=201)
def register(body: Credentials) -> dict[str, str]:
    if "@" not in body.email or len(body.password) < 8:
        raise HTTPException(status_code=422, detail="a valid email and a password of 8 or more characters are required")
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id",
            (body.email.lower(), hash_password(body.password)),
        ).fetchone()
    return {"token": issue_token(row[0])}


@router.post("/login")
def login(body: Credentials) -> dict[str, str]:
    with pool.connection() as conn:
        row = conn.execute("SELECT id, password_hash FROM users WHERE email = %s", (body.email.lower(),)).fetchone()
    if row is None or not verify_password(body.password, row[1]):
        raise HTTPException(status_code=401, detail="wrong email or password")
    return {"token": issue_token(row[0])}
