#!/usr/bin/env python3
"""Render a Guild offline project from the templates, as Guild's Rust code does.

    python render.py --stack ts --type fullstack --entity todo \
        [--field due_date:date:"Due date"] --description "A todo list app" --out DIR

Which files a project gets, and from which template, comes from manifest.json. Templates use
Jinja with [[ ]] / [% %] / [# #] delimiters; paths use __entity__, __Entity__, __entities__.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROJECT_TYPES = {
    "fullstack": {"backend": True, "frontend": True, "devops": True},
    "backend": {"backend": True, "frontend": False, "devops": False},
    "api": {"backend": True, "frontend": False, "devops": True},
    "frontend": {"backend": False, "frontend": True, "devops": False},
}
KINDS = ("text", "integer", "boolean", "date")
PORTS = {"ts": 3000, "py": 8000}


def plural(entity: str) -> str:
    """The plural Guild uses (crates/llm/src/offline/subject.rs)."""
    if entity.endswith(("s", "x", "sh")):
        return entity + "es"
    if entity.endswith("y") and not entity[:-1].endswith(tuple("aeiou")):
        return entity[:-1] + "ies"
    return entity + "s"


def features(description: str) -> list[str]:
    """The feature phrases Guild reads from a description (subject.rs)."""
    found = []
    for part in re.split(r"[,;.]", description.lower()):
        for piece in part.split(" with "):
            for phrase in piece.split(" and "):
                phrase = phrase.strip()
                for article in ("a ", "an "):
                    if phrase.startswith(article):
                        phrase = phrase[len(article):]
                phrase = phrase.strip()
                if phrase:
                    found.append(phrase)
    return found[:8]


def parse_field(spec: str) -> dict[str, str]:
    """`name:kind[:Label]` → {"name", "label", "kind"}."""
    name, _, rest = spec.partition(":")
    kind, _, label = rest.partition(":")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SystemExit(f"field name {name!r} must be snake_case")
    if kind not in KINDS:
        raise SystemExit(f"field kind {kind!r} must be one of {', '.join(KINDS)}")
    return {"name": name, "label": label or name.replace("_", " ").capitalize(), "kind": kind}


def context(args: argparse.Namespace) -> dict[str, object]:
    entity = args.entity
    if not re.fullmatch(r"[a-z]+", entity):
        raise SystemExit("the entity must be lowercase ASCII letters")
    entities = args.plural or plural(entity)
    description = args.description or f"A {entity} app"
    return {
        "entity": entity,
        "Entity": entity[:1].upper() + entity[1:],
        "entities": entities,
        "Entities": entities[:1].upper() + entities[1:],
        "project_name": args.project_name or f"{entity}-app",
        "description": description,
        "features": args.feature or features(description),
        "stack": args.stack,
        **PROJECT_TYPES[args.type],
        "fields": [parse_field(spec) for spec in args.field],
        "backend_port": PORTS[args.stack],
    }


def environment(engine: str):
    """A template environment with Guild's syntax, from jinja2 or minijinja."""
    syntax = dict(
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    if engine == "minijinja":
        import minijinja

        env = minijinja.Environment(
            **syntax, undefined_behavior="strict", auto_escape_callback=lambda _name: None, pycompat=False
        )
        return lambda name, text, ctx: env.render_str(text, name=name, **ctx)
    import jinja2

    env = jinja2.Environment(**syntax, undefined=jinja2.StrictUndefined)
    return lambda name, text, ctx: env.from_string(text).render(**ctx)


def fill_path(path: str, ctx: dict[str, object]) -> str:
    return (
        path.replace("__Entity__", str(ctx["Entity"]))
        .replace("__entities__", str(ctx["entities"]))
        .replace("__entity__", str(ctx["entity"]))
    )


def planned_files(ctx: dict[str, object]) -> list[dict[str, object]]:
    """The manifest's files this project gets: its stack, and every component it needs."""
    manifest = json.loads((ROOT / "manifest.json").read_text())
    return [
        entry
        for entry in manifest["files"]
        if ctx["stack"] in entry["stacks"] and all(ctx[flag] for flag in entry["when"])
    ]


def render(ctx: dict[str, object], out: Path, engine: str = "jinja2") -> list[str]:
    render_text = environment(engine)
    written = []
    for entry in planned_files(ctx):
        template = str(entry["template"])
        text = render_text(template, (ROOT / template).read_text(), ctx)
        path = fill_path(str(entry["path"]), ctx)
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", choices=sorted(PORTS), default="ts")
    parser.add_argument("--type", choices=sorted(PROJECT_TYPES), default="fullstack")
    parser.add_argument("--entity", required=True)
    parser.add_argument("--plural", help="override the plural (default: Guild's rule)")
    parser.add_argument("--field", action="append", default=[], metavar="NAME:KIND[:LABEL]")
    parser.add_argument("--description", default="")
    parser.add_argument("--feature", action="append", help="override the features read from the description")
    parser.add_argument("--project-name")
    parser.add_argument("--engine", choices=["jinja2", "minijinja"], default="jinja2")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--context", action="store_true", help="print the template context as JSON and exit")
    args = parser.parse_args()
    ctx = context(args)
    if args.context:
        json.dump(ctx, sys.stdout, indent=2)
        print()
        return
    written = render(ctx, args.out, args.engine)
    print(f"rendered {len(written)} files into {args.out}")


if __name__ == "__main__":
    main()
