//! Deliberate flaws, so the validation, repair and review → fix loops can be exercised
//! offline and deterministically. A project whose description contains [`FLAW_MARKER`]
//! gets:
//!
//! - from `api_structure`, the backend's application file with a syntax error in the first answer,
//!   and the correct file when asked to repair it (a conversation with more than one
//!   message);
//! - from `authentication`, a hard-coded signing secret, which `security_audit` reports as
//!   a `high` finding at its line, whatever the project;
//! - from `fix_findings`, the correct version of every file its findings name.
//!
//! A project whose description contains [`RUNTIME_FLAW_MARKER`] gets a flaw that parses,
//! passes the design's checks, and fails only when the project is built and run: from
//! `api_structure`, a routes module importing a name its module does not export (caught by
//! `tsc` or `mypy` at its line, and by the tests), repaired by the fix task a verification
//! starts.

/// The marker that turns the flaws on.
pub const FLAW_MARKER: &str = "[guild:flaws]";

/// The marker that turns on the flaw only running the project finds.
pub const RUNTIME_FLAW_MARKER: &str = "[guild:runtime-flaws]";

/// The secret planted by `authentication` and found by `security_audit`.
const PLANTED_SECRET: &str = "\"guild-dev-secret\"";

pub(super) fn wanted(description: &str) -> bool {
    description.contains(FLAW_MARKER)
}

pub(super) fn runtime_wanted(description: &str) -> bool {
    description.contains(RUNTIME_FLAW_MARKER)
}

/// The file's first version under [`RUNTIME_FLAW_MARKER`]: an import of a name that does
/// not exist, aliased so the rest of the file reads as before.
pub(super) fn runtime_flawed(kind: &str, path: &str, content: &str) -> String {
    let is_routes = path.contains("/routes/")
        && !path.ends_with("/auth.ts")
        && !path.ends_with("/auth.py")
        && !path.ends_with("__init__.py");
    if kind != "api_structure" || !is_routes {
        return content.to_owned();
    }
    content
        .replacen(
            "import { parseId } from \"../http.js\";",
            "import { parseIdentifier as parseId } from \"../http.js\";",
            1,
        )
        .replacen(
            "from app.http import JsonBody, StoreDep, parse_id",
            "from app.http import JsonBody, StoreDep, parse_identifier as parse_id",
            1,
        )
}

/// The file's first-answer version under the marker: broken, or with a planted secret.
pub(super) fn flawed(kind: &str, path: &str, content: &str) -> String {
    match (kind, path) {
        ("api_structure", "backend/src/app.ts") => {
            format!("{content}\nexport function health(: string {{\n  return \"ok\";\n}}\n")
        }
        ("api_structure", "backend/app/api.py") => {
            format!("{content}\n\ndef health(:\n    return \"ok\"\n")
        }
        ("authentication", "backend/src/auth.ts") => content.replace(
            "process.env.AUTH_SECRET ?? randomBytes(32).toString(\"hex\")",
            PLANTED_SECRET,
        ),
        ("authentication", "backend/app/auth.py") => content.replace(
            "os.environ.get(\"AUTH_SECRET\") or secrets.token_hex(32)",
            PLANTED_SECRET,
        ),
        _ => content.to_owned(),
    }
}

/// The planted secrets in the files a prompt shows (```` ```lang path=... ```` blocks), as
/// findings: `(path, line)`.
pub(super) fn planted_secrets(prompt: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    for line in prompt.lines() {
        match current {
            None => {
                if let Some(info) = line.strip_prefix("```")
                    && let Some(path) = info
                        .split_whitespace()
                        .find_map(|t| t.strip_prefix("path="))
                {
                    current = Some((path, 0));
                }
            }
            Some((path, n)) => {
                if line.starts_with("```") {
                    current = None;
                } else {
                    current = Some((path, n + 1));
                    if line.contains(PLANTED_SECRET) {
                        found.push((path.to_owned(), n + 1));
                    }
                }
            }
        }
    }
    found
}

/// The files a fix task's prompt lists under its findings (`` `path:line` `` or `` `path` ``).
pub(super) fn files_to_fix(prompt: &str) -> Vec<String> {
    let Some((_, findings)) = prompt.split_once("# Findings to fix") else {
        return Vec::new();
    };
    let mut paths: Vec<String> = findings
        .lines()
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let quoted = line.split('`').nth(1)?;
            let path = quoted.split(':').next()?;
            (!path.is_empty()).then(|| path.to_owned())
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_secrets_are_found_at_their_line() {
        let prompt = "intro\n```typescript path=backend/src/auth.ts\nimport x;\n\nconst secret = \"guild-dev-secret\";\n```\n```sql path=db/schema.sql\nSELECT 1;\n```\n";
        assert_eq!(
            planted_secrets(prompt),
            [("backend/src/auth.ts".to_owned(), 3)]
        );
    }

    #[test]
    fn files_to_fix_come_from_the_findings_section() {
        let prompt = "```ts path=a.ts\n```\n# Findings to fix\n\n- [high] `backend/src/auth.ts:5`: secret.\n- [critical] `db/schema.sql`: x.\n\n# Work already done\n- `other.ts`\n";
        assert_eq!(
            files_to_fix(prompt),
            ["backend/src/auth.ts", "db/schema.sql"]
        );
    }
}
