#!/usr/bin/env python3
"""Static checks of a rendered project (no toolchain needed):

    python check_tree.py PROJECT_DIR [--same-as OTHER_DIR]

- every .json file parses; docs/openapi.json is a valid OpenAPI 3.1 document;
- docker-compose.yml parses, and each build context has a Dockerfile;
- .github/workflows/*.yml parse, and every working-directory exists;
- every YAML file under monitoring/ parses;
- with --same-as: the two trees hold the same files with the same text (jinja2 vs minijinja),
  except JSON strings that differ only in escaping non-ASCII characters.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from openapi_spec_validator import validate


def check(root: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.json")):
        if "node_modules" in path.parts:
            continue
        try:
            json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{path.relative_to(root)}: invalid JSON: {error}")
    contract = root / "docs/openapi.json"
    if contract.exists():
        try:
            validate(json.loads(contract.read_text()))
        except Exception as error:  # noqa: BLE001 - report any validator failure
            problems.append(f"docs/openapi.json: not a valid OpenAPI document: {error}")
    compose = root / "docker-compose.yml"
    if compose.exists():
        services = (yaml.safe_load(compose.read_text()) or {}).get("services", {})
        if not services:
            problems.append("docker-compose.yml: no services")
        for name, service in services.items():
            build = service.get("build")
            if build is None:
                continue
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (root / context / dockerfile).is_file():
                problems.append(f"docker-compose.yml: service {name} builds {context}/{dockerfile}, which does not exist")
        for name, service in services.items():
            for volume in service.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith(".") and not (root / source).exists():
                    problems.append(f"docker-compose.yml: service {name} mounts {source}, which does not exist")
    for workflow in sorted((root / ".github/workflows").glob("*.yml")):
        document = yaml.safe_load(workflow.read_text())
        jobs = document.get("jobs") or {}
        if not jobs:
            problems.append(f"{workflow.relative_to(root)}: no jobs")
        for name, job in jobs.items():
            directories = [job.get("defaults", {}).get("run", {}).get("working-directory")]
            directories += [step.get("working-directory") for step in job.get("steps", [])]
            for directory in filter(None, directories):
                if not (root / directory).is_dir():
                    problems.append(f"{workflow.relative_to(root)}: job {name} uses {directory}/, which does not exist")
    for path in sorted(root.glob("monitoring/*.yml")):
        yaml.safe_load(path.read_text())
    return problems


def same(a: Path, b: Path) -> list[str]:
    problems = []
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    for missing in sorted(files_a ^ files_b):
        problems.append(f"{missing}: rendered by one engine only")
    for rel in sorted(files_a & files_b):
        text_a, text_b = (a / rel).read_text(), (b / rel).read_text()
        if text_a == text_b:
            continue
        # jinja2's tojson escapes non-ASCII (\u00e9), minijinja's keeps it (é): same string.
        if text_a.encode().decode("unicode_escape", "ignore") == text_b.encode().decode("unicode_escape", "ignore"):
            continue
        if _same_json_strings(text_a, text_b):
            continue
        problems.append(f"{rel}: jinja2 and minijinja render it differently")
    return problems


def _same_json_strings(text_a: str, text_b: str) -> bool:
    import re

    literal = re.compile(r'"(?:[^"\\]|\\.)*"')
    parts_a, parts_b = literal.split(text_a), literal.split(text_b)
    strings_a, strings_b = literal.findall(text_a), literal.findall(text_b)
    if parts_a != parts_b or len(strings_a) != len(strings_b):
        return False
    try:
        return all(json.loads(x) == json.loads(y) for x, y in zip(strings_a, strings_b))
    except ValueError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path)
    parser.add_argument("--same-as", type=Path)
    args = parser.parse_args()
    problems = same(args.project, args.same_as) if args.same_as else check(args.project)
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
