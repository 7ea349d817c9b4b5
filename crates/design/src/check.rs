//! The checks a design must pass before any task codes against it.

use std::collections::{BTreeMap, BTreeSet};

use guild_core::AgentKind;
use guild_core::paths::{path_clash, safe_path};

use crate::builtins::{NODE_BUILTINS, PYTHON_STDLIB};
use crate::{Component, Design, PlannedFile, SHARED_COMPONENT};

/// A task of the graph a design is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphTask<'a> {
    pub key: &'a str,
    pub agent: AgentKind,
}

/// At most this many problems are reported at once: enough to fix in one answer.
const MAX_PROBLEMS: usize = 20;

impl Design {
    /// Checks the design for a task graph: the contract is an OpenAPI 3.1 document whose
    /// every operation has one owning file (when the application implements any: one
    /// that implements none only calls the API); components are named once, and a component
    /// that starts a server says its port and health path; every planned path is safe and
    /// planned once (not twice, not in two letter cases, not as both a file and a
    /// directory), owned by a task of the graph that writes files, in a declared
    /// component; every import is a planned file, a package declared for the file's
    /// component, or the standard library; tables and columns are named once.
    ///
    /// # Errors
    ///
    /// Every problem found (at most 20), each naming the field (`files[3]`) and what to do.
    pub fn check(&self, graph: &[GraphTask<'_>]) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        self.check_components(&mut problems);
        self.check_files(graph, &mut problems);
        self.check_imports(&mut problems);
        self.check_operations(&mut problems);
        self.check_data_model(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            problems.truncate(MAX_PROBLEMS);
            Err(problems)
        }
    }

    fn check_components(&self, problems: &mut Vec<String>) {
        let mut seen = BTreeSet::new();
        for (i, component) in self.components.iter().enumerate() {
            let at = format!("`components[{i}]` ({})", component.name);
            if component.name.is_empty() || component.name == SHARED_COMPONENT {
                problems.push(format!(
                    "{at}: name it (not empty, not `{SHARED_COMPONENT}`)"
                ));
            } else if !seen.insert(component.name.as_str()) {
                problems.push(format!("{at}: another component has this name"));
            }
            if component.directory != "."
                && safe_path(&component.directory).as_deref() != Ok(component.directory.as_str())
            {
                problems.push(format!(
                    "{at}: `directory` must be a relative path inside the project (or `.`)"
                ));
            }
            if component.commands.start.is_some() {
                if component.port.is_none_or(|p| p == 0) {
                    problems.push(format!(
                        "{at}: it has a `start` command, so give its `port`"
                    ));
                }
                if !component
                    .health
                    .as_deref()
                    .is_some_and(|h| h.starts_with('/'))
                {
                    problems.push(format!(
                        "{at}: it has a `start` command, so give its `health` path, e.g. \"/health\""
                    ));
                }
            }
        }
    }

    fn check_files(&self, graph: &[GraphTask<'_>], problems: &mut Vec<String>) {
        let agents: BTreeMap<&str, AgentKind> = graph.iter().map(|t| (t.key, t.agent)).collect();
        let mut kept: Vec<&str> = Vec::new();
        for (i, file) in self.files.iter().enumerate() {
            let at = format!("`files[{i}]` ({})", file.path);
            match safe_path(&file.path) {
                Ok(path) if path == file.path => {}
                Ok(path) => problems.push(format!("{at}: write the path as `{path}`")),
                Err(e) => problems.push(format!("{at}: {e}")),
            }
            if let Some(why) = kept.iter().find_map(|k| path_clash(k, &file.path)) {
                problems.push(format!("{at}: {why}; plan each file once"));
            }
            kept.push(&file.path);
            match agents.get(file.task.as_str()) {
                None => problems.push(format!(
                    "{at}: `task` must be a task of the graph ({}), not `{}`",
                    graph.iter().filter(|t| t.agent != AgentKind::Analyst).map(|t| t.key).collect::<Vec<_>>().join(", "),
                    file.task
                )),
                Some(AgentKind::Analyst) => problems.push(format!(
                    "{at}: `{}` is an analysis task and writes no files: give the file to a task that codes",
                    file.task
                )),
                Some(_) => {}
            }
            if file.component != SHARED_COMPONENT && self.component(&file.component).is_none() {
                problems.push(format!(
                    "{at}: `component` must be a declared component or `{SHARED_COMPONENT}`, not `{}`",
                    file.component
                ));
            }
        }
    }

    fn check_imports(&self, problems: &mut Vec<String>) {
        let planned: BTreeSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        for (i, file) in self.files.iter().enumerate() {
            for import in &file.imports {
                if planned.contains(import.as_str()) || self.declares(file, import) {
                    continue;
                }
                let what = if looks_like_path(import) {
                    "is not a planned file"
                } else {
                    "is neither a planned file nor a package declared for its component"
                };
                problems.push(format!(
                    "`files[{i}]` ({}) imports `{import}`, which {what}: plan it, declare the package, or drop the import",
                    file.path
                ));
            }
        }
    }

    /// `import` names a package `file`'s component declares (any component's, for a
    /// shared file), or a standard-library module.
    fn declares(&self, file: &PlannedFile, import: &str) -> bool {
        if looks_like_path(import) {
            return false;
        }
        let name = package_name(import);
        if let Some(builtin) = name.strip_prefix("node:") {
            return NODE_BUILTINS.contains(&builtin.split('/').next().unwrap_or_default());
        }
        if NODE_BUILTINS.contains(&name) || PYTHON_STDLIB.contains(&name) {
            return true;
        }
        let declared = |c: &Component| {
            c.modules.contains_key(name)
                || c.packages.keys().chain(c.dev_packages.keys()).any(|p| {
                    let p = p.split('[').next().unwrap_or_default();
                    p == name || p.replace('-', "_") == name
                })
        };
        match self.component(&file.component) {
            Some(component) => declared(component),
            None => self.components.iter().any(declared),
        }
    }

    fn check_operations(&self, problems: &mut Vec<String>) {
        let operations = match self.operations() {
            Ok(operations) => operations,
            Err(error) => {
                problems.push(format!("`contract`: {error}"));
                return;
            }
        };
        let contract: BTreeSet<String> = operations.iter().map(crate::Operation::name).collect();
        let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (i, file) in self.files.iter().enumerate() {
            for operation in &file.operations {
                if contract.contains(operation) {
                    owners.entry(operation).or_default().push(&file.path);
                } else {
                    problems.push(format!(
                        "`files[{i}]` ({}) implements `{operation}`, which the contract does not have (write operations as `METHOD /path` exactly as in the contract)",
                        file.path
                    ));
                }
            }
        }
        // An application that implements none of the contract only calls it (a frontend
        // of an API that runs elsewhere).
        if owners.is_empty() {
            return;
        }
        for operation in &contract {
            match owners.get(operation.as_str()).map(Vec::as_slice) {
                None | Some([]) => problems.push(format!(
                    "contract operation `{operation}` has no owner: list it in the `operations` of the file that implements it"
                )),
                Some([_]) => {}
                Some(files) => problems.push(format!(
                    "contract operation `{operation}` is implemented by {} files ({}): give it to one",
                    files.len(),
                    files.join(", ")
                )),
            }
        }
    }

    fn check_data_model(&self, problems: &mut Vec<String>) {
        let mut tables = BTreeSet::new();
        for (i, table) in self.data_model.tables.iter().enumerate() {
            if !tables.insert(table.name.as_str()) {
                problems.push(format!(
                    "`data_model.tables[{i}]` ({}): another table has this name",
                    table.name
                ));
            }
            let mut columns = BTreeSet::new();
            for column in &table.columns {
                if !columns.insert(column.name.as_str()) {
                    problems.push(format!(
                        "`data_model.tables[{i}]` ({}): column `{}` is listed twice",
                        table.name, column.name
                    ));
                }
                if column.sql_type.trim().is_empty() {
                    problems.push(format!(
                        "`data_model.tables[{i}]` ({}): column `{}` needs a SQL `type`",
                        table.name, column.name
                    ));
                }
            }
        }
    }
}

/// `./x`, `a/b.ts`: an import that names a file, not a package.
fn looks_like_path(import: &str) -> bool {
    import.starts_with('.')
        || import
            .rsplit('/')
            .next()
            .is_some_and(|last| import.contains('/') && last.contains('.'))
}

/// The package an import specifier names: `@scope/name` of `@scope/name/sub`, `react-dom`
/// of `react-dom/client`, `psycopg` of `psycopg.rows`; `node:` kept.
fn package_name(import: &str) -> &str {
    let end = if import.starts_with('@') {
        import
            .match_indices('/')
            .nth(1)
            .map_or(import.len(), |(i, _)| i)
    } else {
        import.find(['/', '.', '[']).unwrap_or(import.len())
    };
    &import[..end]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn graph() -> Vec<GraphTask<'static>> {
        vec![
            GraphTask {
                key: "requirements_analysis",
                agent: AgentKind::Analyst,
            },
            GraphTask {
                key: "system_design",
                agent: AgentKind::Analyst,
            },
            GraphTask {
                key: "api_structure",
                agent: AgentKind::Backend,
            },
            GraphTask {
                key: "scaffold",
                agent: AgentKind::Devops,
            },
        ]
    }

    fn design() -> Design {
        Design::from_value(json!({
            "contract": {
                "openapi": "3.1.0",
                "info": {"title": "t", "version": "1"},
                "paths": {"/health": {"get": {"responses": {"200": {"description": "up"}}}}}
            },
            "data_model": {"tables": [{"name": "todos", "columns": [{"name": "id", "type": "serial", "primary_key": true}]}]},
            "components": [{
                "name": "backend", "directory": "backend", "stack": "TypeScript, Express",
                "port": 3000, "health": "/health",
                "commands": {"install": "npm install", "start": "npm start"},
                "packages": {"express": "^5.1.0", "@types/express": "^5"},
                "modules": {"psycopg_pool": "psycopg-pool"}
            }],
            "files": [
                {"path": "backend/package.json", "task": "scaffold", "component": "backend", "purpose": "manifest"},
                {"path": "backend/src/app.ts", "task": "api_structure", "component": "backend", "purpose": "app",
                 "exports": ["createApp"], "imports": ["express", "node:crypto", "path", "@types/express", "backend/src/http.ts"],
                 "operations": ["GET /health"]},
                {"path": "backend/src/http.ts", "task": "api_structure", "component": "backend", "purpose": "errors"}
            ]
        }))
        .expect("a design")
    }

    #[test]
    fn a_sound_design_passes() {
        assert_eq!(design().check(&graph()), Ok(()));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let error = Design::from_value(
            json!({"contract": {}, "data_model": {}, "components": [], "files": [{"path": "a"}]}),
        )
        .unwrap_err();
        assert_eq!(error, "`files[0]`: missing field `task`");
    }

    #[test]
    fn every_kind_of_problem_is_reported_at_once() {
        let mut d = design();
        d.files[0].task = "deploy".into();
        d.files[1].imports.push("lodash".into());
        d.files[1].imports.push("backend/src/missing.ts".into());
        d.files[1].operations = vec!["GET /healthz".into(), "GET /health".into()];
        d.files[2].operations = vec!["GET /health".into()];
        d.contract["paths"]["/ready"] =
            json!({"get": {"responses": {"200": {"description": "ready"}}}});
        d.files.push(PlannedFile {
            path: "Backend/src/APP.ts".into(),
            ..d.files[2].clone()
        });
        d.files.push(PlannedFile {
            path: "backend/src/http.ts/x.ts".into(),
            task: "system_design".into(),
            component: "web".into(),
            ..d.files[2].clone()
        });
        d.components[0].health = None;
        d.data_model.tables.push(d.data_model.tables[0].clone());
        let problems = d.check(&graph()).unwrap_err();
        let expected = [
            "`components[0]` (backend): it has a `start` command, so give its `health` path",
            "`files[0]` (backend/package.json): `task` must be a task of the graph (api_structure, scaffold), not `deploy`",
            "`files[3]` (Backend/src/APP.ts): `Backend/src/APP.ts` and `backend/src/app.ts` differ only in letter case",
            "`files[4]` (backend/src/http.ts/x.ts): `backend/src/http.ts/x.ts` needs `backend/src/http.ts` to be a directory",
            "`files[4]` (backend/src/http.ts/x.ts): `system_design` is an analysis task and writes no files",
            "`files[4]` (backend/src/http.ts/x.ts): `component` must be a declared component or `shared`, not `web`",
            "`files[1]` (backend/src/app.ts) imports `lodash`, which is neither a planned file nor a package declared",
            "`files[1]` (backend/src/app.ts) imports `backend/src/missing.ts`, which is not a planned file",
            "`files[1]` (backend/src/app.ts) implements `GET /healthz`, which the contract does not have",
            "contract operation `GET /ready` has no owner",
            "contract operation `GET /health` is implemented by 4 files",
            "`data_model.tables[1]` (todos): another table has this name",
        ];
        for wanted in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(wanted)),
                "missing {wanted:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn package_names_are_read_from_specifiers() {
        assert_eq!(
            package_name("@testing-library/react/pure"),
            "@testing-library/react"
        );
        assert_eq!(package_name("react-dom/client"), "react-dom");
        assert_eq!(package_name("psycopg.rows"), "psycopg");
        assert_eq!(package_name("psycopg[binary]"), "psycopg");
        assert_eq!(package_name("node:crypto"), "node:crypto");
        assert!(looks_like_path("./app"));
        assert!(looks_like_path("backend/src/app.ts"));
        assert!(!looks_like_path("react-dom/client"));
    }
}
