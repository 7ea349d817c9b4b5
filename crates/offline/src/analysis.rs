//! The offline requirements analysis: the reference design's JSON breakdown, built from
//! the project's subject.

use serde_json::json;

use crate::prompt;
use crate::subject::{Backend, Subject};

pub(super) fn answer(subject: &Subject, description: &str) -> String {
    let entity = &subject.entity;
    let entities = subject.plural();
    let (backend, justification) = match subject.backend {
        Backend::TypeScript => (
            "Node.js 20 with Express 5 and pg, in TypeScript",
            "one language from the database to the browser, and a large ecosystem",
        ),
        Backend::Python => (
            "Python 3.11 with FastAPI and psycopg 3",
            "the description asks for Python; FastAPI validates input from type hints",
        ),
    };
    let mut columns: Vec<String> = [
        "id serial primary key",
        "owner_id integer references users",
        "title text",
        "completed boolean",
        "created_at timestamptz",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    columns.extend(
        prompt::fields(subject, "", description)
            .iter()
            .map(|f| format!("{} {} null", f.name, crate::project::sql_type(f.kind))),
    );
    let features: Vec<_> = subject
        .features
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"name": name, "priority": i + 1}))
        .collect();
    let analysis = json!({
        "recommended_technology_stack": {
            "backend": backend,
            "frontend": "React 18 with TypeScript and Vite",
            "database": "PostgreSQL 16",
            "justification": justification,
        },
        "core_features": features,
        "technical_architecture": {
            "style": "three-tier: single-page client, stateless JSON API, relational database",
            "components": ["frontend", "backend API", "PostgreSQL"],
        },
        "database_schema": {
            "tables": [
                {"name": "users", "columns": ["id serial primary key", "email text unique", "password_hash text", "created_at timestamptz"]},
                {"name": entities, "columns": columns},
            ],
        },
        "api_endpoints": [
            {"method": "POST", "path": "/api/auth/register", "description": "create an account"},
            {"method": "POST", "path": "/api/auth/login", "description": "sign in"},
            {"method": "GET", "path": format!("/api/{entities}"), "description": format!("list my {entities}")},
            {"method": "GET", "path": format!("/api/{entities}/{{id}}"), "description": format!("read a {entity}")},
            {"method": "POST", "path": format!("/api/{entities}"), "description": format!("create a {entity}")},
            {"method": "PATCH", "path": format!("/api/{entities}/{{id}}"), "description": format!("update a {entity}")},
            {"method": "DELETE", "path": format!("/api/{entities}/{{id}}"), "description": format!("delete a {entity}")},
        ],
        "frontend_components": [
            {"name": "Button", "purpose": "shared action button"},
            {"name": format!("{}List", subject.type_name()), "purpose": format!("shows {entities} with toggle and remove")},
            {"name": format!("{}Form", subject.type_name()), "purpose": format!("adds a {entity}")},
            {"name": "SignInPage", "purpose": "register and sign in"},
            {"name": "HomePage", "purpose": format!("add and manage {entities}")},
        ],
        "security_considerations": [
            "hash passwords with a slow, salted function",
            "sign tokens and check them on every private route",
            "parameterise every query",
            "authorise every access by owner",
        ],
        "performance_requirements": [
            "p95 API latency under 300 ms at 50 concurrent users",
            format!("index {entities} by owner"),
        ],
        "testing_strategy": {
            "unit": "services and reducers",
            "integration": "the HTTP API through the app with an in-memory store; a smoke test against PostgreSQL",
            "end_to_end": "sign up, add, complete and delete an item",
        },
        "deployment_considerations": [
            "containers for the API and the database, configured by environment",
            "CI runs the tests on every push",
            "health endpoint and Prometheus scraping",
        ],
    });
    serde_json::to_string_pretty(&analysis).expect("a JSON value serialises")
}
