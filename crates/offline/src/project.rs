//! One generated application: its template context (entity, stack, components, extra
//! fields), which of the manifest's files it gets, and their rendered text.

use guild_design::Design;

use crate::manifest::{Entry, MANIFEST, template};
use crate::render::{Context, Field, render};
use crate::subject::{Backend, Subject};

/// Which components an application has (`app/SPEC.md`, "Project types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags {
    pub backend: bool,
    pub frontend: bool,
    pub devops: bool,
}

impl Flags {
    pub const FULLSTACK: Self = Self {
        backend: true,
        frontend: true,
        devops: true,
    };

    /// The components a task graph builds, from the task types it has.
    pub fn of_kinds<'a>(kinds: impl IntoIterator<Item = &'a str> + Clone) -> Self {
        let has = |wanted: &[&str]| kinds.clone().into_iter().any(|k| wanted.contains(&k));
        Self {
            backend: has(&[
                "database_schema",
                "api_structure",
                "authentication",
                "business_logic",
            ]),
            frontend: has(&[
                "ui_components",
                "page_layouts",
                "state_management",
                "api_integration",
            ]),
            devops: has(&["environment_config", "ci_cd_pipeline"]),
        }
    }

    fn has(self, flag: &str) -> bool {
        match flag {
            "backend" => self.backend,
            "frontend" => self.frontend,
            "devops" => self.devops,
            _ => false,
        }
    }
}

/// The fixed columns of the main entity's table; any other column is an extra field.
pub(crate) const FIXED_COLUMNS: &[&str] = &["id", "owner_id", "title", "completed", "created_at"];

/// An application the offline model writes.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub context: Context,
}

impl Project {
    pub fn new(subject: &Subject, description: &str, flags: Flags, fields: Vec<Field>) -> Self {
        let stack = match subject.backend {
            Backend::TypeScript => "ts",
            Backend::Python => "py",
        };
        let entities = subject.plural();
        Self {
            context: Context {
                entity: subject.entity.clone(),
                entity_type: capitalised(&subject.entity),
                entities_type: capitalised(&entities),
                entities,
                project_name: format!("{}-app", subject.entity),
                description: description.to_owned(),
                features: subject.features.clone(),
                stack,
                backend: flags.backend,
                frontend: flags.frontend,
                devops: flags.devops,
                fields,
                backend_port: if stack == "py" && flags.backend {
                    8000
                } else {
                    3000
                },
            },
        }
    }

    /// The application a design describes: its components, and the extra fields of its
    /// main entity's table.
    pub fn of_design(subject: &Subject, description: &str, design: &Design) -> Self {
        let mut subject = subject.clone();
        if let Some(backend) = design.component("backend") {
            subject.backend = if backend.stack.to_lowercase().contains("python") {
                Backend::Python
            } else {
                Backend::TypeScript
            };
        }
        let flags = Flags {
            backend: design.component("backend").is_some(),
            frontend: design.component("frontend").is_some(),
            devops: design.file(".env.example").is_some(),
        };
        let entities = subject.plural();
        let fields = design
            .data_model
            .tables
            .iter()
            .find(|t| t.name == entities)
            .map(|table| {
                table
                    .columns
                    .iter()
                    .filter(|c| !FIXED_COLUMNS.contains(&c.name.as_str()))
                    .map(|c| Field {
                        label: label(&c.name),
                        name: c.name.clone(),
                        kind: kind_of(&c.sql_type),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self::new(&subject, description, flags, fields)
    }

    /// The manifest's files this application gets: of its stack, with every component
    /// they need.
    pub fn entries(&self) -> impl Iterator<Item = &'static Entry> + '_ {
        let flags = Flags {
            backend: self.context.backend,
            frontend: self.context.frontend,
            devops: self.context.devops,
        };
        MANIFEST.files.iter().filter(move |e| {
            e.stacks.iter().any(|s| s == self.context.stack) && e.when.iter().all(|w| flags.has(w))
        })
    }

    /// The entry this application writes at `path`.
    pub fn entry_at(&self, path: &str) -> Option<&'static Entry> {
        self.entries().find(|e| self.context.fill(&e.path) == path)
    }

    /// An entry's path and text.
    pub fn file(&self, entry: &Entry) -> (String, String) {
        let path = self.context.fill(&entry.path);
        let text = render(&entry.template, template(&entry.template), &self.context);
        (path, text)
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

/// `due_date` → `Due date`.
pub(crate) fn label(name: &str) -> String {
    capitalised(&name.replace('_', " "))
}

/// A field's kind from its column's SQL type.
pub(crate) fn kind_of(sql_type: &str) -> &'static str {
    let t = sql_type.to_lowercase();
    if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.starts_with("bool") {
        "boolean"
    } else if t == "date" {
        "date"
    } else {
        "text"
    }
}

/// A field's SQL type from its kind.
pub(crate) fn sql_type(kind: &str) -> &'static str {
    match kind {
        "integer" => "integer",
        "boolean" => "boolean",
        "date" => "date",
        _ => "text",
    }
}
