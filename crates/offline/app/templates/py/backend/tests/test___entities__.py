from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

PATH = "/api/[[ entities ]]"
# For each extra field: a valid value, and another one to change it to.
EXTRAS: dict[str, tuple[Any, Any]] = {
[% for field in fields %]
    "[[ field.name ]]": [% if field.kind == "integer" %](4, 12)[% elif field.kind == "boolean" %](True, False)[% elif field.kind == "date" %]("2030-01-31", "2030-02-28")[% else %]("some text", "other text")[% endif %],
[% endfor %]
}


def extra_values(index: int) -> dict[str, Any]:
    return {name: values[index] for name, values in EXTRAS.items()}


def test_needs_a_valid_token(client: TestClient) -> None:
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers={"Authorization": "Bearer forged.token"}).status_code == 401
    assert client.post(PATH, json={"title": "x"}).status_code == 401


def test_create_list_read_update_delete(client: TestClient, headers: dict[str, str]) -> None:
    created = client.post(PATH, json={"title": "  First  ", **extra_values(0)}, headers=headers)
    assert created.status_code == 201
    item = created.json()
    assert item == {
        "id": item["id"],
        "title": "First",
        "completed": False,
        **extra_values(0),
        "created_at": item["created_at"],
    }
    assert isinstance(item["id"], int)

    second = client.post(PATH, json={"title": "Second", "completed": True}, headers=headers).json()
    assert second["completed"] is True
    assert all(second[name] is None for name in EXTRAS)

    listed = client.get(PATH, headers=headers)
    assert listed.status_code == 200
    assert [entry["id"] for entry in listed.json()] == [second["id"], item["id"]]

    read = client.get(f"{PATH}/{item['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json() == item

    changes = {"title": "Renamed", "completed": True, **extra_values(1)}
    patched = client.patch(f"{PATH}/{item['id']}", json=changes, headers=headers)
    assert patched.status_code == 200
    assert patched.json() == {**item, **changes}

    assert client.delete(f"{PATH}/{item['id']}", headers=headers).status_code == 204
    assert client.get(f"{PATH}/{item['id']}", headers=headers).status_code == 404
    assert client.delete(f"{PATH}/{item['id']}", headers=headers).status_code == 404
[% if fields %]


def test_null_clears_extra_fields(client: TestClient, headers: dict[str, str]) -> None:
    item = client.post(PATH, json={"title": "Extras", **extra_values(0)}, headers=headers).json()
    cleared = dict.fromkeys(EXTRAS)
    patched = client.patch(f"{PATH}/{item['id']}", json=cleared, headers=headers)
    assert patched.status_code == 200
    assert patched.json() == {**item, **cleared}
[% endif %]


def test_other_users_items_are_404(
    client: TestClient, headers: dict[str, str], sign_up: Callable[..., dict[str, str]]
) -> None:
    item = client.post(PATH, json={"title": "Mine"}, headers=headers).json()
    stranger = sign_up()
    assert client.get(f"{PATH}/{item['id']}", headers=stranger).status_code == 404
    assert client.patch(f"{PATH}/{item['id']}", json={"completed": True}, headers=stranger).status_code == 404
    assert client.delete(f"{PATH}/{item['id']}", headers=stranger).status_code == 404
    assert client.get(PATH, headers=stranger).json() == []


@pytest.mark.parametrize("item_id", ["abc", "0", "-1", "1.5", "99999999999"])
def test_malformed_id_is_400(client: TestClient, headers: dict[str, str], item_id: str) -> None:
    assert client.get(f"{PATH}/{item_id}", headers=headers).status_code == 400
    assert client.delete(f"{PATH}/{item_id}", headers=headers).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"completed": True},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": 5},
        {"title": "ok", "completed": "yes"},
        {"title": "a\u0000b"},
[% for field in fields %]
        {"title": "ok", "[[ field.name ]]": [% if field.kind == "integer" %]1.5[% elif field.kind == "boolean" %]"yes"[% elif field.kind == "date" %]"2030-02-30"[% else %]42[% endif %]},
[% endfor %]
    ],
)
def test_invalid_create_is_400(client: TestClient, headers: dict[str, str], body: Any) -> None:
    response = client.post(PATH, json=body, headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_invalid_json_is_400(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(PATH, content=b'{"title": ', headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize("body", [{}, {"colour": "red"}, {"title": None}, {"completed": "yes"}])
def test_invalid_update_is_400(client: TestClient, headers: dict[str, str], body: Any) -> None:
    item = client.post(PATH, json={"title": "Target"}, headers=headers).json()
    assert client.patch(f"{PATH}/{item['id']}", json=body, headers=headers).status_code == 400
