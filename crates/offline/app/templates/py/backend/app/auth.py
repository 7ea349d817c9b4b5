"""Accounts: scrypt password hashes, HMAC-signed tokens, and the current-user dependency."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import Annotated

from fastapi import Depends, Header

from app.http import HttpError, StoreDep
from app.models import User

SECRET = os.environ.get("AUTH_SECRET") or secrets.token_hex(32)
TOKEN_LIFETIME_SECONDS = 7 * 24 * 60 * 60


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=64)


def hash_password(password: str) -> str:
    """Hashes as "scrypt$<salt>$<hash>", with a random salt per password."""
    salt = secrets.token_bytes(16)
    return f"scrypt${salt.hex()}${_scrypt(password, salt).hex()}"


def verify_password(password: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt, _, expected = rest.partition("$")
    if scheme != "scrypt":
        return False
    try:
        actual = _scrypt(password, bytes.fromhex(salt)).hex()
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _sign(payload: str) -> str:
    digest = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_token(user_id: int) -> str:
    """A token "<payload>.<signature>": the payload names the user and when the token expires."""
    claims = {"sub": user_id, "exp": int(time.time()) + TOKEN_LIFETIME_SECONDS}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{payload}.{_sign(payload)}"


def verify_token(token: str) -> int | None:
    """The user id a token was issued for, or None if it is forged, malformed or expired."""
    payload, _, signature = token.partition(".")
    if not payload or not hmac.compare_digest(_sign(payload).encode(), signature.encode()):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    sub, exp = claims.get("sub"), claims.get("exp")
    live = isinstance(exp, int) and exp > time.time()
    return sub if live and isinstance(sub, int) and not isinstance(sub, bool) and sub > 0 else None


def current_user(store: StoreDep, authorization: Annotated[str | None, Header()] = None) -> User:
    """The signed-in user, or a 401 unless the request carries a valid token of an existing user."""
    scheme, _, token = (authorization or "").partition(" ")
    user_id = verify_token(token) if scheme.lower() == "bearer" and token else None
    user = store.find_user_by_id(user_id) if user_id is not None else None
    if user is None:
        raise HttpError(401, "missing or invalid token")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
