from typing import Any

import pytest
from fastapi.testclient import TestClient

CREDENTIALS = {"email": "Ada@Example.com", "password": "correct horse"}


def test_register_refuses_a_taken_email_and_logs_in(client: TestClient) -> None:
    registered = client.post("/api/auth/register", json=CREDENTIALS)
    assert registered.status_code == 201
    body = registered.json()
    assert body["user"] == {"id": body["user"]["id"], "email": "ada@example.com"}
    assert isinstance(body["token"], str)

    again = client.post("/api/auth/register", json={**CREDENTIALS, "email": "ada@example.com"})
    assert again.status_code == 409
    assert set(again.json()) == {"error"}

    login = client.post("/api/auth/login", json=CREDENTIALS)
    assert login.status_code == 200
    assert login.json()["user"] == body["user"]


def test_wrong_password_or_unknown_email_is_401(client: TestClient) -> None:
    client.post("/api/auth/register", json=CREDENTIALS)
    wrong = client.post("/api/auth/login", json={"email": CREDENTIALS["email"], "password": "wrong password"})
    assert wrong.status_code == 401
    unknown = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "whatever1"})
    assert unknown.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada.example.com", "password": "long enough"},
        {"email": "bob@example.com", "password": "short"},
        {"email": "bob@example.com", "password": 12345678},
        {"password": "long enough"},
        [],
    ],
    ids=["no @", "short password", "number password", "no email", "array body"],
)
def test_invalid_registration_is_400(client: TestClient, body: Any) -> None:
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_invalid_json_is_400(client: TestClient) -> None:
    response = client.post("/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics(client: TestClient) -> None:
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "http_requests_total" in response.text
