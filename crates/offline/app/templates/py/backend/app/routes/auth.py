"""POST /api/auth/register and POST /api/auth/login."""

import re

from fastapi import APIRouter

from app.auth import hash_password, issue_token, verify_password
from app.http import HttpError, JsonBody, StoreDep, read_object, read_string
from app.models import Session, User
from app.store import EmailTaken

router = APIRouter(prefix="/api/auth")


def _credentials(body: object, registering: bool) -> tuple[str, str]:
    """Email and password from a body; registering also checks the rules for new accounts."""
    data = read_object(body)
    email = read_string(data.get("email"), "email", 254).strip().lower()
    password = read_string(data.get("password"), "password", 128)
    if registering and not re.fullmatch(r"[^\s@]+@[^\s@]+", email):
        raise HttpError(400, "email must be an address like name@example.com")
    if registering and len(password) < 8:
        raise HttpError(400, "password must be 8 to 128 characters long")
    return email, password


@router.post("/register", status_code=201)
def register(store: StoreDep, body: JsonBody = None) -> Session:
    email, password = _credentials(body, registering=True)
    try:
        user = store.create_user(email, hash_password(password))
    except EmailTaken:
        raise HttpError(409, "this email is already registered") from None
    return Session(token=issue_token(user.id), user=user)


@router.post("/login")
def login(store: StoreDep, body: JsonBody = None) -> Session:
    email, password = _credentials(body, registering=False)
    found = store.find_user_by_email(email)
    if found is None or not verify_password(password, found.password_hash):
        raise HttpError(401, "wrong email or password")
    return Session(token=issue_token(found.id), user=User(id=found.id, email=found.email))
