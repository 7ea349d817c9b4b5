//! The design's shape, as stored (JSON) and as a model writes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The component name of files that belong to no one component (`README.md`, CI, compose).
pub const SHARED_COMPONENT: &str = "shared";

/// A generated application's design. Unknown fields are ignored.
///
/// JSON shape: `{"contract": {OpenAPI 3.1}, "data_model": {"tables": [...]},
/// "components": [...], "files": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Design {
    /// The HTTP contract the backend serves and the frontend calls: an OpenAPI 3.1
    /// document with request and response schemas, status codes and security per
    /// operation. `{}` for an application with no HTTP API.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub contract: Value,
    pub data_model: DataModel,
    pub components: Vec<Component>,
    /// Every file of the application, each owned by one task.
    pub files: Vec<PlannedFile>,
}

/// The tables of the application's database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataModel {
    #[serde(default)]
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Table constraints in SQL, e.g. `UNIQUE (owner_id, title)`.
    #[serde(default)]
    pub constraints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Column {
    pub name: String,
    /// The SQL type, e.g. `integer`, `text`, `boolean`, `date`, `timestamptz`.
    #[serde(rename = "type")]
    pub sql_type: String,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub primary_key: bool,
    #[serde(default)]
    pub unique: bool,
    /// The column it refers to, as `table.column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// The default, in SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A part of the application that is installed, built, tested and started on its own:
/// `backend`, `frontend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Component {
    pub name: String,
    /// Its directory, relative to the project root; the commands run there.
    pub directory: String,
    /// Language and frameworks, e.g. `TypeScript, Express 5, pg`.
    pub stack: String,
    /// The TCP port its server listens on (a component with a `start` command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The path of its health check, answering 200 once it serves, e.g. `/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub commands: Commands,
    /// Runtime packages and their version ranges, as the package manager names them
    /// (`express` → `^5.1.0`, `psycopg[binary]` → `>=3.2,<4`).
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    /// Packages needed to build and test only.
    #[serde(default)]
    pub dev_packages: BTreeMap<String, String>,
    /// Import names that differ from their package's name (Python: `psycopg_pool` →
    /// `psycopg-pool`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modules: BTreeMap<String, String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// The shell commands of a component, run in its directory in this order; `None` when
/// the stack has no such step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commands {
    #[serde(default)]
    pub install: Option<String>,
    #[serde(default)]
    pub typecheck: Option<String>,
    #[serde(default)]
    pub lint: Option<String>,
    #[serde(default)]
    pub build: Option<String>,
    #[serde(default)]
    pub test: Option<String>,
    /// Starts the server in the foreground (a component that serves).
    #[serde(default)]
    pub start: Option<String>,
}

impl Commands {
    /// The steps before `start`, by name, in the order they run.
    pub fn steps(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("install", self.install.as_deref()),
            ("typecheck", self.typecheck.as_deref()),
            ("lint", self.lint.as_deref()),
            ("build", self.build.as_deref()),
            ("test", self.test.as_deref()),
        ]
    }
}

/// An environment variable a component reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Holds a credential: never printed, never committed.
    #[serde(default)]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// A file of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedFile {
    /// Relative to the project root.
    pub path: String,
    /// The key of the task that writes it.
    pub task: String,
    /// The component it belongs to, or [`SHARED_COMPONENT`].
    #[serde(default = "shared")]
    pub component: String,
    pub purpose: String,
    /// The names other files import from it (TypeScript: exported functions, constants,
    /// classes and types, `default` for a default export; Python: top-level names).
    #[serde(default)]
    pub exports: Vec<String>,
    /// What it imports: planned paths, or packages declared for its component.
    #[serde(default)]
    pub imports: Vec<String>,
    /// The contract operations it implements, as `METHOD /path` (`GET /api/todos/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

fn shared() -> String {
    SHARED_COMPONENT.to_owned()
}

impl Design {
    /// Reads a design from JSON, naming the first field that does not fit
    /// (`files[3].task: missing field`).
    ///
    /// # Errors
    ///
    /// The path of the offending field and what is wrong with it.
    pub fn from_value(value: Value) -> Result<Self, String> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("`{path}`: {}", e.inner())
            }
        })
    }

    /// The design as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a design is plain data")
    }

    /// The planned files task `task` owns, in plan order.
    pub fn files_of(&self, task: &str) -> impl Iterator<Item = &PlannedFile> {
        let task = task.to_owned();
        self.files.iter().filter(move |f| f.task == task)
    }

    /// The planned file at `path`.
    pub fn file(&self, path: &str) -> Option<&PlannedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The planned files `file` imports, in its order.
    pub fn imported_files<'a>(
        &'a self,
        file: &'a PlannedFile,
    ) -> impl Iterator<Item = &'a PlannedFile> + 'a {
        file.imports.iter().filter_map(|i| self.file(i))
    }
}
