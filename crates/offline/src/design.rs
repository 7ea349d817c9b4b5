//! The offline design: the contract, data model, components and file plan of the
//! application the templates write, for the task graph the prompt lists.

use guild_design::{Column, DataModel, Design, PlannedFile, SHARED_COMPONENT, Table};
use serde_json::{Value, json};

use crate::manifest::{MANIFEST, template};
use crate::project::{Flags, Project, sql_type};
use crate::prompt;
use crate::render::render;
use crate::subject::Subject;

/// A task of the graph the design prompt lists (`json tasks` block).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct GraphTask {
    pub key: String,
    pub kind: String,
}

/// The design answer: the design as JSON, in a fenced block after one line of prose.
pub(crate) fn answer(subject: &Subject, description: &str, prompt_text: &str) -> String {
    let graph: Vec<GraphTask> = prompt::json_block(prompt_text, "tasks").unwrap_or_default();
    let flags = if graph.is_empty() {
        Flags::FULLSTACK
    } else {
        Flags::of_kinds(graph.iter().map(|t| t.kind.as_str()))
    };
    // A change request's design keeps the fields the current one has, and adds those
    // the change asks for.
    let project = Project::new(
        subject,
        description,
        flags,
        prompt::fields(subject, prompt_text, description),
    );
    let design = design(&project, &graph);
    format!(
        "The design of the {} application: its contract, data model, components and the plan of its {} files.\n\n```json\n{}\n```\n",
        project.context.entity,
        design.files.len(),
        serde_json::to_string_pretty(&design.to_value()).expect("a design serialises")
    )
}

/// The design of `project`, its files owned by the tasks of `graph` (by task type; all of
/// them when the graph is unknown).
pub(crate) fn design(project: &Project, graph: &[GraphTask]) -> Design {
    let owner = |kind: &str| -> Option<String> {
        if graph.is_empty() {
            return Some(kind.to_owned());
        }
        graph.iter().find(|t| t.kind == kind).map(|t| t.key.clone())
    };
    let context = &project.context;
    let fill_all = |items: &[String]| items.iter().map(|i| context.fill(i)).collect::<Vec<_>>();
    let files = project
        .entries()
        .filter_map(|entry| {
            Some(PlannedFile {
                path: context.fill(&entry.path),
                task: owner(&entry.task)?,
                component: match entry.component.as_str() {
                    "backend" | "frontend" => entry.component.clone(),
                    _ => SHARED_COMPONENT.to_owned(),
                },
                purpose: context.fill(&entry.purpose),
                exports: fill_all(&entry.exports),
                imports: fill_all(&entry.imports),
                operations: fill_all(&entry.operations),
            })
        })
        .collect();
    let contract: Value = serde_json::from_str(&render(
        "contract/openapi.json",
        template("contract/openapi.json"),
        context,
    ))
    .expect("the contract template renders JSON");
    Design {
        contract,
        data_model: data_model(project),
        components: components(project),
        files,
    }
}

fn column(name: &str, sql_type: &str) -> Column {
    Column {
        name: name.to_owned(),
        sql_type: sql_type.to_owned(),
        nullable: false,
        primary_key: false,
        unique: false,
        references: None,
        default: None,
    }
}

fn data_model(project: &Project) -> DataModel {
    let context = &project.context;
    if !context.backend {
        return DataModel::default();
    }
    let users = Table {
        name: "users".into(),
        columns: vec![
            Column {
                primary_key: true,
                ..column("id", "serial")
            },
            Column {
                unique: true,
                ..column("email", "text")
            },
            column("password_hash", "text"),
            Column {
                default: Some("now()".into()),
                ..column("created_at", "timestamptz")
            },
        ],
        constraints: Vec::new(),
    };
    let mut columns = vec![
        Column {
            primary_key: true,
            ..column("id", "serial")
        },
        Column {
            references: Some("users.id".into()),
            ..column("owner_id", "integer")
        },
        column("title", "text"),
        Column {
            default: Some("false".into()),
            ..column("completed", "boolean")
        },
        Column {
            default: Some("now()".into()),
            ..column("created_at", "timestamptz")
        },
    ];
    columns.extend(context.fields.iter().map(|f| Column {
        nullable: true,
        ..column(&f.name, sql_type(f.kind))
    }));
    let entities = Table {
        name: context.entities.clone(),
        columns,
        constraints: vec!["CHECK (char_length(title) BETWEEN 1 AND 200)".into()],
    };
    DataModel {
        tables: vec![users, entities],
    }
}

/// The components of the manifest this project has, named and described.
fn components(project: &Project) -> Vec<guild_design::Component> {
    let context = &project.context;
    let mut found = Vec::new();
    let mut add = |name: &str, stack: &str, mut value: Value| {
        let object = value
            .as_object_mut()
            .expect("a manifest component is an object");
        object.remove("metrics");
        object.insert("name".into(), json!(name));
        object.insert("stack".into(), json!(stack));
        if object.get("health").is_none_or(Value::is_null) {
            // Vite's dev server answers its page at `/`.
            object.insert("health".into(), json!("/"));
        }
        let text = context
            .fill(&value.to_string())
            .replace("{backend_port}", &context.backend_port.to_string());
        let component =
            serde_json::from_str(&text).expect("a manifest component is a design component");
        found.push(component);
    };
    if context.backend {
        let (stack, label) = match context.stack {
            "py" => ("py", "Python 3.11, FastAPI, psycopg 3, uvicorn"),
            _ => ("ts", "TypeScript, Node 20, Express 5, pg"),
        };
        add(
            "backend",
            label,
            MANIFEST.components["backend"][stack].clone(),
        );
    }
    if context.frontend {
        add(
            "frontend",
            "TypeScript, React 18, Vite",
            MANIFEST.components["frontend"].clone(),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use guild_core::AgentKind;
    use guild_design::GraphTask as Task;

    use super::*;

    fn graph(keys: &[(&'static str, AgentKind)]) -> (Vec<GraphTask>, Vec<Task<'static>>) {
        let leaked: &'static [(&str, AgentKind)] = Box::leak(keys.to_vec().into_boxed_slice());
        (
            leaked
                .iter()
                .map(|(k, _)| GraphTask {
                    key: (*k).into(),
                    kind: (*k).into(),
                })
                .collect(),
            leaked
                .iter()
                .map(|(k, a)| Task { key: k, agent: *a })
                .collect(),
        )
    }

    #[test]
    fn the_offline_designs_pass_the_design_checks_for_every_stack_and_type() {
        use AgentKind::{Analyst, Backend, Devops, Frontend, Reviewer};
        let full = [
            ("requirements_analysis", Analyst),
            ("system_design", Analyst),
            ("scaffold", Devops),
            ("database_schema", Backend),
            ("api_structure", Backend),
            ("authentication", Backend),
            ("business_logic", Backend),
            ("backend_tests", Backend),
            ("ui_components", Frontend),
            ("page_layouts", Frontend),
            ("state_management", Frontend),
            ("api_integration", Frontend),
            ("frontend_tests", Frontend),
            ("environment_config", Devops),
            ("ci_cd_pipeline", Devops),
            ("monitoring_setup", Devops),
            ("code_review", Reviewer),
            ("security_audit", Reviewer),
            ("performance_testing", Reviewer),
            ("readme", Devops),
        ];
        let frontend_only: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, a)| {
                matches!(a, Frontend | Analyst) || ["scaffold", "code_review", "readme"].contains(k)
            })
            .collect();
        for description in [
            "A todo list app with user accounts and sharing",
            "An inventory tracker in Python",
        ] {
            for keys in [&full[..], &frontend_only[..]] {
                let (offline, checked) = graph(keys);
                let subject = Subject::new(description, None);
                let flags = Flags::of_kinds(offline.iter().map(|t| t.kind.as_str()));
                let project = Project::new(&subject, description, flags, Vec::new());
                let design = design(&project, &offline);
                assert_eq!(
                    design.check(&checked),
                    Ok(()),
                    "{description}, frontend {}",
                    flags.frontend
                );
                let text = design.to_value().to_string();
                assert!(
                    !text.contains("__entit") && !text.contains("__Entit"),
                    "unfilled placeholder"
                );
                let round_trip = Design::from_value(design.to_value()).expect("reads back");
                assert_eq!(round_trip, design);
            }
        }
    }
}
