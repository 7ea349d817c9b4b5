#!/usr/bin/env python3
"""Check manifest.json against rendered projects, as Guild does: every planned export exists,
and every import of a planned file resolves to a planned path or a declared package.

    python check_manifest.py PROJECT_DIR STACK ENTITY ENTITIES [PROJECT_DIR STACK ENTITY ENTITIES ...]

Exits non-zero and names each mismatch. A listed export or import that the rendered file
does not have is a mismatch too (the manifest must be exactly true).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

TS_EXPORT = re.compile(
    r"^export\s+(?:declare\s+)?(?:async\s+)?(?:function\*?|const|let|var|class|abstract\s+class|interface|type|enum)\s+([A-Za-z_$][\w$]*)",
    re.M,
)
TS_DEFAULT = re.compile(r"^export\s+default\b", re.M)
TS_IMPORT = re.compile(r"""^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?\s*["']([^"']+)["']""", re.M)
TS_REFERENCE = re.compile(r"""^///\s*<reference\s+types=["']([^"']+)["']""", re.M)
PY_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.M)
PY_ASSIGN = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)", re.M)
PY_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+))|import[ \t]+([\w.]+))", re.M)


def exports_of(path: str, text: str) -> list[str]:
    if path.endswith((".ts", ".tsx")):
        names = TS_EXPORT.findall(text)
        if TS_DEFAULT.search(text):
            names.append("default")
        return sorted(set(names))
    if path.endswith(".py"):
        names = PY_DEF.findall(text) + PY_ASSIGN.findall(text)
        return sorted({name for name in names if not name.startswith(("_", "test_"))})
    return []


def package_of(specifier: str) -> str:
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def ts_imports(path: str, text: str, planned: set[str]) -> tuple[list[str], list[str]]:
    """(planned paths, packages) that a TypeScript file imports; unresolved ones are errors."""
    found, errors = set(), []
    specifiers = TS_IMPORT.findall(text) + TS_REFERENCE.findall(text)
    for spec in specifiers:
        if spec.startswith("node:"):
            continue
        if spec.startswith("."):
            base = os.path.normpath(os.path.join(os.path.dirname(path), spec))
            stem = re.sub(r"\.js$", "", base)
            candidates = [base, stem + ".ts", stem + ".tsx", stem + "/index.ts"]
            hit = next((c for c in candidates if c in planned), None)
            if hit is None:
                errors.append(f"{path}: import {spec!r} is not a planned file")
            else:
                found.add(hit)
        else:
            found.add(package_of(spec))
    return sorted(found), errors


def py_imports(path: str, text: str, planned: set[str], root: str) -> tuple[list[str], list[str]]:
    found, errors = set(), []
    for module, grouped, names, plain in PY_IMPORT.findall(text):
        names = grouped or names
        module = module or plain
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top == "app":
            rel = f"{root}/" + module.replace(".", "/")
            module_file = f"{rel}.py" if f"{rel}.py" in planned else f"{rel}/__init__.py"
            targets = set()
            for name in filter(None, re.split(r"[\s,]+", names.strip())):
                # `from app.routes import auth` imports the submodule when there is one.
                targets.add(f"{rel}/{name}.py" if f"{rel}/{name}.py" in planned else module_file)
            for target in targets or {module_file}:
                if target in planned:
                    found.add(target)
                else:
                    errors.append(f"{path}: import {module!r} is not a planned file")
        else:
            found.add(top)
    return sorted(found), errors


def check(project: Path, stack: str, entity: str, entities: str, manifest: dict) -> list[str]:
    """The mismatches between the manifest and one rendered project."""
    errors: list[str] = []
    on_disk = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    names = {
        "__Entities__": entities[:1].upper() + entities[1:],
        "__Entity__": entity[:1].upper() + entity[1:],
        "__entities__": entities,
        "__entity__": entity,
    }

    def fill(text: str) -> str:
        for placeholder, value in names.items():
            text = text.replace(placeholder, value)
        return text

    entries = []
    for entry in manifest["files"]:
        path = fill(entry["path"])
        if stack in entry["stacks"] and path in on_disk:
            entries.append((path, {**entry, "exports": [fill(e) for e in entry["exports"]], "imports": [fill(i) for i in entry["imports"]]}))
    planned = {path for path, _ in entries}
    for path, entry in entries:
        text = (project / path).read_text()
        have = exports_of(path, text)
        if sorted(entry["exports"]) != have:
            errors.append(f"{path}: exports {sorted(entry['exports'])} in the manifest, {have} in the file")
        if path.endswith((".ts", ".tsx")):
            imports, bad = ts_imports(path, text, planned)
        elif path.endswith(".py"):
            imports, bad = py_imports(path, text, planned, "backend")
        else:
            imports, bad = [], []
        errors += bad
        component = manifest["components"].get(entry["component"])
        if component is not None:
            spec = component.get(stack, component)
            declared = set(spec["packages"]) | set(spec["dev_packages"])
            modules = spec.get("modules", {})
            imports = [i if i in planned else modules.get(i, i) for i in imports]
            errors += [f"{path}: imports the undeclared package {i!r}" for i in imports if i not in planned and i not in declared]
        if sorted(entry["imports"]) != sorted(set(imports)):
            errors.append(f"{path}: imports {sorted(entry['imports'])} in the manifest, {sorted(set(imports))} in the file")
    return errors


def main() -> None:
    manifest = json.loads((ROOT / "manifest.json").read_text())
    args = sys.argv[1:]
    if not args or len(args) % 4:
        sys.exit(__doc__)
    errors = []
    for i in range(0, len(args), 4):
        project, stack, entity, entities = args[i : i + 4]
        errors += check(Path(project), stack, entity, entities, manifest)
    for error in errors:
        print(error)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
