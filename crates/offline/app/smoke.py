#!/usr/bin/env python3
"""Exercise a running backend over HTTP against the contract.

    python smoke.py BASE_URL ENTITIES [FIELDS] [--contract FILE]

FIELDS is "name:kind,name:kind" (kinds: text, integer, boolean, date). Without --contract,
the contract template (contract/openapi.json) is rendered for ENTITIES and FIELDS. Every
answer must have a status the contract documents for that operation, and a body valid
against its response schema. Exits non-zero on the first failed check.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent
VALUES = {  # kind -> (a valid value, another valid value, an invalid value)
    "text": ("some text", "other text", 42),
    "integer": (4, 12, 1.5),
    "boolean": (True, False, "yes"),
    "date": ("2030-01-31", "2030-02-28", "2030-02-30"),
}


class Failure(Exception):
    pass


def singular(entities: str) -> str:
    if entities.endswith("ies"):
        return entities[:-3] + "y"
    if re.search(r"(s|x|sh)es$", entities):
        return entities[:-2]
    return entities[:-1] if entities.endswith("s") else entities


def load_contract(path: str | None, entities: str, fields: list[dict[str, str]]) -> dict[str, Any]:
    if path:
        return json.loads(Path(path).read_text())
    sys.path.insert(0, str(ROOT))
    import render  # noqa: E402  (this directory's render.py)

    args = argparse.Namespace(
        entity=singular(entities), plural=entities, description="smoke", project_name=None,
        feature=None, stack="ts", type="fullstack",
        field=[f"{f['name']}:{f['kind']}" for f in fields],
    )
    text = render.environment("jinja2")("openapi.json", (ROOT / "contract/openapi.json").read_text(), render.context(args))
    return json.loads(text)


class Api:
    def __init__(self, base: str, contract: dict[str, Any]) -> None:
        self.base = base.rstrip("/")
        self.contract = contract
        self.checks = 0

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        for template, item in self.contract["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path.split("?")[0]) and method.lower() in item:
                return template, item[method.lower()]
        raise Failure(f"{method} {path} is not in the contract")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, content_type, payload = response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            status, content_type, payload = error.code, error.headers.get("Content-Type", ""), error.read()
        parsed: Any = payload.decode()
        if "json" in content_type and payload:
            parsed = json.loads(payload)
        self.validate(method, path, status, content_type, parsed)
        return status, parsed

    def validate(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        template, operation = self.operation(method, path)
        responses = operation["responses"]
        if str(status) not in responses:
            raise Failure(f"{method} {path} answered {status}, which {template} does not document: {body!r}")
        response = responses[str(status)]
        if "$ref" in response:
            response = self.contract["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        content = response.get("content")
        if not content:
            if body not in ("", None):
                raise Failure(f"{method} {path} answered {status} with a body the contract does not have: {body!r}")
            return
        media = next(iter(content))
        if media.split("/")[1] not in content_type:
            raise Failure(f"{method} {path} answered {status} as {content_type!r}, not {media}")
        schema = {**content[media]["schema"], "components": self.contract["components"]}
        try:
            jsonschema.Draft202012Validator(schema).validate(body)
        except jsonschema.ValidationError as error:
            raise Failure(f"{method} {path} answered {status} with a body off the contract: {error.message}") from None

    def expect(self, what: str, status: int, method: str, path: str, **kwargs: Any) -> Any:
        got, body = self.call(method, path, **kwargs)
        if got != status:
            raise Failure(f"{what}: expected {status}, got {got}: {body!r}")
        self.checks += 1
        print(f"ok   {what}: {method} {path} -> {status}")
        return body


def run(api: Api, entities: str, fields: list[dict[str, str]]) -> None:
    collection = f"/api/{entities}"
    first = {f["name"]: VALUES[f["kind"]][0] for f in fields}
    second = {f["name"]: VALUES[f["kind"]][1] for f in fields}

    api.expect("health", 200, "GET", "/health")
    email = f"smoke-{secrets.token_hex(4)}@example.com"
    credentials = {"email": email, "password": "correct horse battery"}
    session = api.expect("register", 201, "POST", "/api/auth/register", body=credentials)
    token = session["token"]
    api.expect("duplicate register", 409, "POST", "/api/auth/register", body={**credentials, "email": email.upper()})
    api.expect("login", 200, "POST", "/api/auth/login", body=credentials)
    api.expect("wrong password", 401, "POST", "/api/auth/login", body={**credentials, "password": "wrong password"})
    api.expect("register with a short password", 400, "POST", "/api/auth/register", body={"email": "a@b.c", "password": "short"})
    api.expect("register with an array", 400, "POST", "/api/auth/register", body=[])

    created = api.expect("create", 201, "POST", collection, token=token, body={"title": " Smoke test ", **first})
    if created["title"] != "Smoke test" or created["completed"] is not False or any(created[k] != v for k, v in first.items()):
        raise Failure(f"create did not round-trip: {created!r}")
    item = f"{collection}/{created['id']}"
    listed = api.expect("list", 200, "GET", collection, token=token)
    if [entry["id"] for entry in listed] != [created["id"]]:
        raise Failure(f"list does not hold exactly the new item: {listed!r}")
    newer = api.expect("create a second", 201, "POST", collection, token=token, body={"title": "Newer", "completed": True})
    if [entry["id"] for entry in api.expect("list newest first", 200, "GET", collection, token=token)] != [newer["id"], created["id"]]:
        raise Failure("list is not newest first")
    if api.expect("get", 200, "GET", item, token=token) != created:
        raise Failure("get differs from create")

    changes = {"title": "Renamed", "completed": True, **second}
    patched = api.expect("patch title, completed and extras", 200, "PATCH", item, token=token, body=changes)
    if any(patched[k] != v for k, v in changes.items()):
        raise Failure(f"patch did not apply: {patched!r}")
    if fields:
        cleared = api.expect("patch extras to null", 200, "PATCH", item, token=token, body=dict.fromkeys(first))
        if any(cleared[k] is not None for k in first):
            raise Failure(f"null did not clear the extras: {cleared!r}")
    if api.expect("get after patch", 200, "GET", item, token=token)["title"] != "Renamed":
        raise Failure("patch did not persist")

    for bad_id in ("abc", "0", "-1", "1.5", "99999999999"):
        api.expect(f"malformed id {bad_id}", 400, "GET", f"{collection}/{bad_id}", token=token)
    api.expect("malformed id on delete", 400, "DELETE", f"{collection}/abc", token=token)
    bodies = [
        ("an array body", {"body": []}),
        ("a number as title", {"body": {"title": 5}}),
        ("invalid JSON", {"raw": b'{"title": '}),
        ('"completed": "yes"', {"body": {"title": "x", "completed": "yes"}}),
        ("no title", {"body": {"completed": True}}),
        ("a blank title", {"body": {"title": "   "}}),
        ("a title of 201 characters", {"body": {"title": "x" * 201}}),
        ("a NUL in the title", {"body": {"title": "a\u0000b"}}),
        ("a lone surrogate in the title", {"raw": b'{"title": "\\ud800"}'}),
        ("a string body", {"raw": b'"title"'}),
        ("a body nested 50,000 levels deep", {"raw": b"[" * 50_000 + b"]" * 50_000}),
        ("a body over 100 kB", {"body": {"title": "x", "padding": "x" * 200_000}}),
        ("no body", {}),
    ] + [(f"a wrong {f['name']}", {"body": {"title": "x", f["name"]: VALUES[f["kind"]][2]}}) for f in fields]
    for what, kwargs in bodies:
        api.expect(f"create with {what}", 400, "POST", collection, token=token, **kwargs)
    for what, body in (("an empty object", {}), ("an array", []), ("a null title", {"title": None}), ('"completed": "yes"', {"completed": "yes"})):
        api.expect(f"patch with {what}", 400, "PATCH", item, token=token, body=body)
    api.expect("patch with invalid JSON", 400, "PATCH", item, token=token, raw=b"{")

    api.expect("list without a token", 401, "GET", collection)
    api.expect("create without a token", 401, "POST", collection, body={"title": "x"})
    api.expect("get with a forged token", 401, "GET", item, token=token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    api.expect("get with a garbage token", 401, "GET", item, token="not-a-token")

    other = api.expect("register another user", 201, "POST", "/api/auth/register",
                       body={"email": f"other-{secrets.token_hex(4)}@example.com", "password": "another password"})["token"]
    api.expect("another user's get", 404, "GET", item, token=other)
    api.expect("another user's patch", 404, "PATCH", item, token=other, body={"completed": False})
    api.expect("another user's delete", 404, "DELETE", item, token=other)
    if api.expect("another user's list", 200, "GET", collection, token=other) != []:
        raise Failure("another user sees items that are not theirs")

    api.expect("delete", 204, "DELETE", item, token=token)
    api.expect("get after delete", 404, "GET", item, token=token)
    api.expect("delete again", 404, "DELETE", item, token=token)

    metrics = api.expect("metrics", 200, "GET", "/metrics")
    if "http_requests_total" not in metrics:
        raise Failure("/metrics has no http_requests_total")
    api.expect("still answering", 200, "GET", "/health")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url")
    parser.add_argument("entities")
    parser.add_argument("fields", nargs="?", default="")
    parser.add_argument("--contract", help="a rendered openapi.json (default: render the template)")
    args = parser.parse_args()
    fields = []
    for spec in filter(None, args.fields.split(",")):
        name, _, kind = spec.partition(":")
        if kind not in VALUES:
            sys.exit(f"unknown kind in {spec!r}")
        fields.append({"name": name, "kind": kind})
    api = Api(args.base_url, load_contract(args.contract, args.entities, fields))
    try:
        run(api, args.entities, fields)
    except (Failure, OSError) as error:
        print(f"FAIL {error}")
        sys.exit(1)
    print(f"smoke: {api.checks} passed, 0 failed")


if __name__ == "__main__":
    main()
