#!/usr/bin/env python3
"""Refresh the `exports` and `imports` of manifest.json from the templates.

    python update_manifest.py

Renders a few projects (both stacks, with and without extra fields), scans each planned file
as check_manifest.py does, writes the names back with their placeholders (__entity__,
__Entity__, __entities__, __Entities__) and leaves everything else in the manifest as it is.
Run it after changing what a template exports or imports; check.sh verifies the result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import check_manifest
import render

ROOT = Path(__file__).resolve().parent
PROJECTS = [  # stack, type, entity, fields
    ("ts", "fullstack", "recipe", ["due_date:date", "servings:integer", "notes:text", "vegan:boolean"]),
    ("py", "fullstack", "recipe", ["due_date:date", "servings:integer", "notes:text", "vegan:boolean"]),
]


def main() -> None:
    path = ROOT / "manifest.json"
    manifest = json.loads(path.read_text())
    scanned: dict[str, tuple[list[str], list[str]]] = {}
    for stack, project_type, entity, fields in PROJECTS:
        args = argparse.Namespace(
            entity=entity, plural=None, description="A project", project_name=None, feature=None,
            stack=stack, type=project_type, field=fields,
        )
        ctx = render.context(args)
        names = {f"__{key}__": str(ctx[key]) for key in ("Entities", "Entity", "entities", "entity")}

        def general(text: str) -> str:
            for placeholder, value in names.items():
                text = text.replace(value, placeholder)
            return text

        with tempfile.TemporaryDirectory() as out:
            render.render(ctx, Path(out))
            files = {p.relative_to(out).as_posix() for p in Path(out).rglob("*") if p.is_file()}
            for index, entry in enumerate(manifest["files"]):
                real = render.fill_path(entry["path"], ctx)
                if stack not in entry["stacks"] or real not in files:
                    continue
                text = (Path(out) / real).read_text()
                exports = check_manifest.exports_of(real, text)
                if real.endswith((".ts", ".tsx")):
                    imports, _ = check_manifest.ts_imports(real, text, files)
                elif real.endswith(".py"):
                    imports, _ = check_manifest.py_imports(real, text, files, "backend")
                else:
                    imports = []
                component = manifest["components"].get(entry["component"])
                modules = component.get(stack, component).get("modules", {}) if component else {}
                imports = [i if i in files else modules.get(i, i) for i in imports]
                scanned[f"{index}"] = (sorted({general(e) for e in exports}), sorted({general(i) for i in imports}))
    for index, entry in enumerate(manifest["files"]):
        if str(index) in scanned:
            entry["exports"], entry["imports"] = scanned[str(index)]
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"updated {len(scanned)} of {len(manifest['files'])} files in {path.name}")


if __name__ == "__main__":
    main()
