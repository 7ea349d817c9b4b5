//! Findings read from what the toolchains print: a file and line where the output names
//! one (tsc, vite/esbuild, vitest, mypy, ruff, pytest), the component's manifest for a
//! failed install (npm, pip), and test counts from the runners' summaries.

use std::sync::LazyLock;

use guild_core::{Finding, Severity};
use guild_design::{Component, Design};
use regex::Regex;

use guild_core::verification::TestCount;

/// At most this many findings come from one step: the first are the useful ones.
const MAX_PER_STEP: usize = 12;

/// `src/app.ts(12,5): error TS2304: Cannot find name 'x'.`
static TSC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(?P<file>[^\s(:]+\.(?:tsx?|jsx?|mts|cts))\((?P<line>\d+),\d+\): error (?P<message>.+)$")
        .expect("a valid regex")
});

/// `path:line[:column]: message` (mypy, ruff, esbuild, most linters).
static LOCATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:✘ \[ERROR\] |ERROR: )?(?P<file>[\w./@-]+\.(?:py|tsx?|jsx?|mts|css|json|html)):(?P<line>\d+)(?::\d+)?:? (?P<message>.+)$")
        .expect("a valid regex")
});

/// esbuild's (Vite's) two-line errors: `✘ [ERROR] message`, then `    file:line:column:`.
static ESBUILD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*✘ \[ERROR\] (?P<message>.+)\n(?:.*\n){0,2}?\s+(?P<file>[\w./@-]+\.(?:tsx?|jsx?|mts|css)):(?P<line>\d+):\d+:\s*$")
        .expect("a valid regex")
});

/// pytest's `FAILED tests/test_x.py::test_y - AssertionError: …`.
static PYTEST_FAILED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^(?:FAILED|ERROR) (?P<file>[\w./-]+\.py)(?:::(?P<test>\S+))?(?: - (?P<message>.+))?$",
    )
    .expect("a valid regex")
});

/// A stack frame naming a source file: `❯ src/x.ts:12:5`, `at f (src/x.ts:12:5)`,
/// `app/x.py:45: in f`.
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)(?:❯ |\(|^)(?P<file>[\w./@-]+\.(?:tsx?|jsx?|py)):(?P<line>\d+)(?::\d+)?(?:\)|: in | |$)")
        .expect("a valid regex")
});

/// Vitest's ` FAIL  test/todos.test.ts > suite > name`.
static VITEST_FAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:FAIL|×|✗)\s+(?P<file>[\w./-]+\.(?:tsx?|jsx?))(?: > (?P<test>.+))?$")
        .expect("a valid regex")
});

static VITEST_COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*Tests\s+(?:(?P<failed>\d+) failed\s*\|\s*)?(?:(?P<passed>\d+) passed)?")
        .expect("a valid regex")
});

static PYTEST_COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(?:=+ )?(?:(?P<failed>\d+) failed)?(?:, )?(?:(?P<passed>\d+) passed)?[^\n]* in [\d.]+s").expect("a valid regex")
});

/// Tests passed and failed, from Vitest's or pytest's summary line.
pub fn test_count(output: &str) -> Option<TestCount> {
    let count = |caps: &regex::Captures<'_>, name: &str| {
        caps.name(name)
            .and_then(|m| m.as_str().parse().ok())
            .unwrap_or(0)
    };
    let caps = VITEST_COUNT
        .captures_iter(output)
        .last()
        .or_else(|| PYTEST_COUNT.captures_iter(output).last())?;
    let found = TestCount {
        passed: count(&caps, "passed"),
        failed: count(&caps, "failed"),
    };
    (found.passed + found.failed > 0).then_some(found)
}

/// The findings a failed step's output names, on files of the design.
pub fn from_output(
    design: &Design,
    component: &Component,
    step: &str,
    command: &str,
    output: &str,
) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    let add =
        |found: &mut Vec<Finding>, file: Option<String>, line: Option<u32>, message: String| {
            let Some(file) = file else { return };
            let message = format!("{step} (`{command}`): {}", message.trim());
            if found.len() < MAX_PER_STEP && !found.iter().any(|f| f.file == file && f.line == line)
            {
                found.push(Finding {
                    severity: Severity::High,
                    file,
                    line,
                    message,
                    suggested_fix: None,
                });
            }
        };
    let located = |caps: &regex::Captures<'_>| {
        (
            project_path(design, component, &caps["file"]),
            caps.name("line").and_then(|l| l.as_str().parse().ok()),
        )
    };
    for caps in TSC
        .captures_iter(output)
        .chain(ESBUILD.captures_iter(output))
        .chain(LOCATED.captures_iter(output))
    {
        let (file, line) = located(&caps);
        add(&mut found, file, line, caps["message"].to_owned());
    }
    for caps in PYTEST_FAILED
        .captures_iter(output)
        .chain(VITEST_FAIL.captures_iter(output))
    {
        let test = caps.name("test").map_or("", |t| t.as_str());
        let message = caps.name("message").map_or("", |m| m.as_str());
        add(
            &mut found,
            project_path(design, component, &caps["file"]),
            None,
            format!("test {test} failed {message}").replace("  ", " "),
        );
    }
    // The frames of a failure point at the code under test too.
    if !found.is_empty() || step == "test" || step == "start" {
        for caps in FRAME.captures_iter(output) {
            let (file, line) = located(&caps);
            if file.as_deref().is_some_and(|f| !is_test_file(f)) {
                add(
                    &mut found,
                    file,
                    line,
                    format!(
                        "the failure's stack passes here: {}",
                        excerpt(output, &caps[0])
                    ),
                );
            }
        }
    }
    if found.is_empty() && step == "install" {
        let file = manifest(design, component, command);
        add(&mut found, file, None, install_error(output));
    }
    found
}

fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains(".test.")
        || name.contains(".spec.")
        || name.starts_with("test_")
        || name == "conftest.py"
}

/// The line of `output` holding `needle`, trimmed.
fn excerpt(output: &str, needle: &str) -> String {
    output
        .lines()
        .find(|l| l.contains(needle.trim()))
        .map_or_else(
            || needle.trim().to_owned(),
            |l| l.trim().chars().take(200).collect(),
        )
}

/// The planned path a tool's path means: relative to the component's directory, to the
/// project, or inside the sandbox (`/project/...`).
fn project_path(design: &Design, component: &Component, raw: &str) -> Option<String> {
    let raw = raw.trim_start_matches("./");
    let raw = raw.strip_prefix("/project/").unwrap_or(raw);
    let joined = if component.directory == "." {
        raw.to_owned()
    } else {
        format!("{}/{raw}", component.directory)
    };
    [joined, raw.to_owned()]
        .into_iter()
        .find(|p| design.file(p).is_some())
}

/// The manifest an install command reads: `-r requirements*.txt`, else the component's
/// `package.json`, `requirements.txt` or `pyproject.toml`, whichever is planned.
fn manifest(design: &Design, component: &Component, command: &str) -> Option<String> {
    let named = command
        .split_whitespace()
        .skip_while(|w| *w != "-r")
        .nth(1)
        .map(str::to_owned);
    named
        .into_iter()
        .chain(["package.json", "requirements.txt", "pyproject.toml"].map(str::to_owned))
        .find_map(|name| project_path(design, component, &name))
}

/// The lines of a failed install that say why (npm's `npm error`, pip's `ERROR:`).
fn install_error(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| {
            l.starts_with("npm error") || l.starts_with("npm ERR!") || l.starts_with("ERROR:")
        })
        .take(6)
        .collect();
    if lines.is_empty() {
        "the install failed".to_owned()
    } else {
        lines.join(" / ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn design() -> Design {
        Design::from_value(json!({
            "contract": {},
            "data_model": {},
            "components": [{"name": "backend", "directory": "backend", "stack": "ts", "commands": {}}],
            "files": [
                {"path": "backend/package.json", "task": "scaffold", "component": "backend", "purpose": "m"},
                {"path": "backend/requirements-dev.txt", "task": "scaffold", "component": "backend", "purpose": "m"},
                {"path": "backend/src/app.ts", "task": "api_structure", "component": "backend", "purpose": "a"},
                {"path": "backend/app/db.py", "task": "business_logic", "component": "backend", "purpose": "d"},
                {"path": "backend/test/todos.test.ts", "task": "backend_tests", "component": "backend", "purpose": "t"}
            ]
        }))
        .expect("design")
    }

    fn files(found: &[Finding]) -> Vec<(String, Option<u32>)> {
        found.iter().map(|f| (f.file.clone(), f.line)).collect()
    }

    #[test]
    fn compiler_and_linter_errors_land_on_their_file_and_line() {
        let d = design();
        let c = &d.components[0];
        let tsc = "src/app.ts(12,5): error TS2304: Cannot find name 'makeApp'.\nsrc/nope.ts(1,1): error TS1: x\n";
        let found = from_output(&d, c, "typecheck", "npm run typecheck", tsc);
        assert_eq!(files(&found), [("backend/src/app.ts".into(), Some(12))]);
        assert!(
            found[0]
                .message
                .contains("TS2304: Cannot find name 'makeApp'"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].severity, Severity::High);

        let mypy = "app/db.py:7: error: Incompatible return value type  [return-value]\nFound 1 error in 1 file\n";
        assert_eq!(
            files(&from_output(&d, c, "typecheck", ".venv/bin/mypy", mypy)),
            [("backend/app/db.py".into(), Some(7))]
        );
        let esbuild = "✘ [ERROR] Expected \";\" but found \"x\"\n\n    src/app.ts:3:7:\n";
        assert_eq!(
            files(&from_output(&d, c, "build", "npm run build", esbuild)),
            [("backend/src/app.ts".into(), Some(3))]
        );
    }

    #[test]
    fn failing_tests_name_the_test_file_and_the_code_under_test() {
        let d = design();
        let c = &d.components[0];
        let vitest = " FAIL  test/todos.test.ts > todos > creates one\nAssertionError: expected 500 to be 201\n ❯ src/app.ts:40:11\n\n Tests  1 failed | 11 passed (12)\n";
        let found = from_output(&d, c, "test", "npm test", vitest);
        assert_eq!(
            files(&found),
            [
                ("backend/test/todos.test.ts".into(), None),
                ("backend/src/app.ts".into(), Some(40))
            ]
        );
        assert_eq!(
            test_count(vitest),
            Some(TestCount {
                passed: 11,
                failed: 1
            })
        );
        assert_eq!(
            test_count(" Tests  12 passed (12)\n"),
            Some(TestCount {
                passed: 12,
                failed: 0
            })
        );
        assert_eq!(
            test_count("==== 2 failed, 10 passed in 0.52s ====\n"),
            Some(TestCount {
                passed: 10,
                failed: 2
            })
        );
        assert_eq!(
            test_count("===== 9 passed in 1.02s =====\n"),
            Some(TestCount {
                passed: 9,
                failed: 0
            })
        );
        // pytest -q prints the summary bare.
        assert_eq!(
            test_count("........\n30 passed in 0.55s\n"),
            Some(TestCount {
                passed: 30,
                failed: 0
            })
        );
        assert_eq!(
            test_count("1 failed, 29 passed in 0.61s\n"),
            Some(TestCount {
                passed: 29,
                failed: 1
            })
        );
        assert_eq!(test_count("no summary"), None);
    }

    #[test]
    fn a_failed_install_lands_on_the_manifest_it_read() {
        let d = design();
        let c = &d.components[0];
        let npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/expresss\n";
        let found = from_output(&d, c, "install", "npm install", npm);
        assert_eq!(files(&found), [("backend/package.json".into(), None)]);
        assert!(found[0].message.contains("404 Not Found"));
        let pip = "ERROR: Could not find a version that satisfies the requirement fastapii\n";
        let found = from_output(
            &d,
            c,
            "install",
            "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt",
            pip,
        );
        assert_eq!(
            files(&found),
            [("backend/requirements-dev.txt".into(), None)]
        );
    }
}
