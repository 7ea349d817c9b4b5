"""Fixtures: the real app on an in-memory store (no database needed), and signed-up users."""

from collections.abc import Callable, Iterator
from itertools import count

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.store import MemoryStore

_accounts = count(1)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(MemoryStore())) as client:
        yield client


@pytest.fixture
def sign_up(client: TestClient) -> Callable[..., dict[str, str]]:
    """Registers a fresh account and returns the headers that authenticate as it."""

    def sign_up() -> dict[str, str]:
        email = f"user{next(_accounts)}@example.com"
        response = client.post("/api/auth/register", json={"email": email, "password": "correct horse"})
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return sign_up


@pytest.fixture
def headers(sign_up: Callable[..., dict[str, str]]) -> dict[str, str]:
    return sign_up()
