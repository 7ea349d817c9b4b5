//! What a task's files got wrong against the design: files outside its plan, planned files
//! or exports missing, imports that resolve to nothing planned, calls to routes the
//! contract does not have.

use std::collections::BTreeSet;

use crate::{Design, Operation, PlannedFile, SHARED_COMPONENT};

/// A file a task wrote, with what a parser read of it (`None` where its language is not
/// read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile<'a> {
    pub path: &'a str,
    pub content: &'a str,
    /// The names it exports (TypeScript `export`s, `default`; Python top-level names).
    pub exports: Option<Vec<String>>,
    /// Its import specifiers as written (`./http.js`, `express`, `.routes`, `app.db`).
    pub imports: Option<Vec<String>>,
}

/// How a written file departs from the design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonconformity {
    pub path: String,
    pub kind: NonconformityKind,
    /// What is wrong and what to do, for the model.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonconformityKind {
    /// The file is not in the plan, or another task owns it: it should not be written.
    Unplanned,
    /// A planned file of the task was not written.
    Missing,
    /// The file is planned but its exports, imports or calls differ from the design.
    Interface,
}

/// Extensions a TypeScript or JavaScript specifier may leave out, in resolution order.
const SCRIPT_EXTENSIONS: &[&str] = &[".ts", ".tsx", ".js", ".jsx", ".mts", ".mjs", ".d.ts"];

impl Design {
    /// How the files a task wrote depart from the design: a file outside the plan (or,
    /// with an `owner`, owned by another task), a planned export it lacks, a project import
    /// that resolves to no planned file, a call to a route the contract lacks; with an
    /// `owner`, also each of its planned files not written. `existing` are the paths other
    /// tasks already wrote (imports may resolve to them as well). A fix task has no owner:
    /// it may rewrite any planned file.
    pub fn conformance(
        &self,
        owner: Option<&str>,
        written: &[WrittenFile<'_>],
        existing: &BTreeSet<&str>,
    ) -> Vec<Nonconformity> {
        let mut problems = Vec::new();
        let mut push = |path: &str, kind, message: String| {
            problems.push(Nonconformity {
                path: path.to_owned(),
                kind,
                message,
            });
        };
        let operations = self.operations().unwrap_or_default();
        for file in written {
            let Some(planned) = self.file(file.path) else {
                let yours = owner
                    .map(|o| {
                        self.files_of(o)
                            .map(|f| format!("`{}`", f.path))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                push(
                    file.path,
                    NonconformityKind::Unplanned,
                    format!(
                        "`{}` is not in the design's file plan: write only planned files{}, and put this code in one of them",
                        file.path,
                        if yours.is_empty() {
                            String::new()
                        } else {
                            format!(" (yours: {yours})")
                        }
                    ),
                );
                continue;
            };
            if let Some(owner) = owner
                && planned.task != owner
            {
                push(
                    file.path,
                    NonconformityKind::Unplanned,
                    format!(
                        "`{}` belongs to task `{}` in the design: leave it to that task",
                        file.path, planned.task
                    ),
                );
                continue;
            }
            if let Some(exports) = &file.exports {
                let missing: Vec<&str> = planned
                    .exports
                    .iter()
                    .filter(|e| !exports.contains(e))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    push(
                        file.path,
                        NonconformityKind::Interface,
                        format!(
                            "`{}` must export {} as the design plans (other files import {})",
                            file.path,
                            quoted(&missing),
                            if missing.len() == 1 { "it" } else { "them" }
                        ),
                    );
                }
            }
            if let Some(imports) = &file.imports {
                for import in imports {
                    if let Some(problem) = self.unresolved(planned, import, written, existing) {
                        push(file.path, NonconformityKind::Interface, problem);
                    }
                }
            }
            if planned.component != "backend" && !operations.is_empty() {
                for route in undefined_routes(file.content, &operations) {
                    push(
                        file.path,
                        NonconformityKind::Interface,
                        format!(
                            "`{}` calls `{route}`, which the contract does not have: call only the contract's operations ({})",
                            file.path,
                            operations
                                .iter()
                                .map(Operation::name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(owner) = owner {
            for planned in self.files_of(owner) {
                if !written.iter().any(|w| w.path == planned.path)
                    && !existing.contains(planned.path.as_str())
                {
                    push(
                        &planned.path,
                        NonconformityKind::Missing,
                        format!(
                            "planned file `{}` is missing: write it ({})",
                            planned.path, planned.purpose
                        ),
                    );
                }
            }
        }
        problems
    }

    /// Why `import` in `file` resolves to nothing it may use, if it does not.
    fn unresolved(
        &self,
        file: &PlannedFile,
        import: &str,
        written: &[WrittenFile<'_>],
        existing: &BTreeSet<&str>,
    ) -> Option<String> {
        let known = |path: &str| {
            self.file(path).is_some()
                || existing.contains(path)
                || written.iter().any(|w| w.path == path)
        };
        let candidates = self.candidates(file, import)?;
        if candidates.iter().any(|c| known(c)) {
            return None;
        }
        Some(format!(
            "`{}` imports `{import}`, which is no planned file (looked for {}): import only what the design plans",
            file.path,
            quoted(&candidates.iter().map(String::as_str).collect::<Vec<_>>())
        ))
    }

    /// The planned paths a project-local import may mean, or `None` for an import of a
    /// package (checked against the design when it is planned, not here).
    fn candidates(&self, file: &PlannedFile, import: &str) -> Option<Vec<String>> {
        let dir = file.path.rsplit_once('/').map_or("", |(d, _)| d);
        if file.path.ends_with(".py") {
            return self.python_candidates(file, dir, import);
        }
        if !import.starts_with('.') {
            return None;
        }
        let base = join(dir, import)?;
        let stem = ["js", "jsx", "mjs"]
            .iter()
            .find_map(|ext| base.strip_suffix(&format!(".{ext}")))
            .unwrap_or(&base);
        let mut found = vec![base.clone()];
        found.extend(SCRIPT_EXTENSIONS.iter().map(|e| format!("{stem}{e}")));
        found.extend(SCRIPT_EXTENSIONS.iter().map(|e| format!("{base}/index{e}")));
        found.dedup();
        Some(found)
    }

    /// Python: `.x`/`..x` relative to the file's package; `pkg.x` when `pkg` is a planned
    /// package of the file's component.
    fn python_candidates(
        &self,
        file: &PlannedFile,
        dir: &str,
        import: &str,
    ) -> Option<Vec<String>> {
        let root = self
            .component(&file.component)
            .map(|c| c.directory.trim_end_matches('/'))
            .filter(|d| *d != "." && file.component != SHARED_COMPONENT)
            .unwrap_or("");
        let (base, module) = if let Some(rest) = import.strip_prefix('.') {
            let ups = rest.chars().take_while(|c| *c == '.').count();
            let mut base = dir.to_owned();
            for _ in 0..ups {
                base = base
                    .rsplit_once('/')
                    .map_or(String::new(), |(d, _)| d.to_owned());
            }
            (base, &rest[ups..])
        } else {
            let top = import.split('.').next().unwrap_or_default();
            let package = join(root, top)?;
            let planned = self.files.iter().any(|f| {
                f.path.starts_with(&format!("{package}/")) || f.path == format!("{package}.py")
            });
            if !planned {
                return None;
            }
            (root.to_owned(), import)
        };
        let module_path = module.replace('.', "/");
        let target = if module_path.is_empty() {
            base
        } else {
            join(&base, &module_path)?
        };
        Some(vec![
            format!("{target}.py"),
            format!("{target}/__init__.py"),
        ])
    }
}

/// `dir` joined with a relative `path` (`./a`, `../b`, `c`), or `None` when it climbs out.
fn join(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The routes a file's string and template literals call that the contract lacks: a
/// literal starting with `/` whose first segment is that of some contract path (`/api/…`)
/// and that matches no contract path (`${…}` and `{…}` match a path parameter; a query
/// string is ignored).
pub fn undefined_routes(content: &str, operations: &[Operation]) -> Vec<String> {
    let templates: Vec<Vec<&str>> = operations.iter().map(|o| segments(&o.path)).collect();
    let prefixes: BTreeSet<&str> = templates
        .iter()
        .filter_map(|t| t.first().copied())
        .filter(|s| !s.starts_with('{'))
        .collect();
    let mut undefined = Vec::new();
    for literal in route_literals(content) {
        let route = literal.split(['?', '#']).next().unwrap_or_default();
        let parts = segments(route);
        let Some(first) = parts.first() else { continue };
        if !prefixes.contains(first) {
            continue;
        }
        // A literal may be the start of a route the code completes (`"/api"` + `/todos`).
        let fits = |template: &Vec<&str>| {
            template.len() >= parts.len()
                && template
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t == p || is_parameter(t) || is_parameter(p))
        };
        let route = route.trim_end_matches('/').to_owned();
        if !templates.iter().any(fits) && !undefined.contains(&route) {
            undefined.push(route);
        }
    }
    undefined
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn is_parameter(segment: &str) -> bool {
    (segment.starts_with('{') && segment.ends_with('}'))
        || segment.starts_with("${")
        || segment.starts_with(':')
}

/// Text of the quoted literals (`"…"`, `'…'`, `` `…` ``) that start with `/`.
fn route_literals(content: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let bytes = content.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if matches!(quote, b'"' | b'\'' | b'`')
            && bytes.get(i + 1) == Some(&b'/')
            && bytes.get(i + 2) != Some(&b'/')
        {
            let start = i + 1;
            let mut end = start;
            let mut depth = 0usize;
            while end < bytes.len() {
                match bytes[end] {
                    b'\n' if quote != b'`' => break,
                    b'{' if quote == b'`' => depth += 1,
                    b'}' if quote == b'`' => depth = depth.saturating_sub(1),
                    c if c == quote && depth == 0 => break,
                    _ => {}
                }
                end += 1;
            }
            if end < bytes.len() && bytes[end] == quote {
                let literal = &content[start..end];
                if !literal.contains(char::is_whitespace) {
                    found.push(literal);
                }
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    found
}
