//! The offline requirements analysis: the reference design's JSON breakdown, built from
//! the project's subject.

use serde_json::json;

use super::subject::{Backend, Subject};

pub(super) fn answer(subject: &Subject) -> String {
    let entity = &subject.entity;
    let entities = subject.plural();
    let (backend, justification) = match subject.backend {
        Backend::TypeScript => (
            "Node.js 20 with Express, in TypeScript",
            "one language from the database to the browser, and a large ecosystem",
        ),
        Backend::Python => (
            "Python 3.12 with FastAPI",
            "the description asks for Python; FastAPI validates input from type hints",
        ),
    };
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
                {"name": "users", "columns": ["id", "email", "password_hash", "created_at"]},
                {"name": entities, "columns": ["id", "owner_id", "title", "details", "done", "created_at"]},
                {"name": format!("{entity}_shares"), "columns": [format!("{entity}_id"), "user_id", "can_edit"]},
            ],
        },
        "api_endpoints": [
            {"method": "POST", "path": "/api/auth/register", "description": "create an account"},
            {"method": "POST", "path": "/api/auth/login", "description": "sign in"},
            {"method": "GET", "path": format!("/api/{entities}"), "description": format!("list my {entities}")},
            {"method": "POST", "path": format!("/api/{entities}"), "description": format!("create a {entity}")},
            {"method": "PATCH", "path": format!("/api/{entities}/{{id}}"), "description": format!("update a {entity}")},
            {"method": "DELETE", "path": format!("/api/{entities}/{{id}}"), "description": format!("delete a {entity}")},
        ],
        "frontend_components": [
            {"name": "Button", "purpose": "shared action button"},
            {"name": format!("{}List", subject.type_name()), "purpose": format!("shows {entities} with toggle and remove")},
            {"name": "HomePage", "purpose": format!("add and manage {entities}")},
        ],
        "security_considerations": [
            "hash passwords with a slow, salted function",
            "sign tokens and check them on every private route",
            "parameterise every query",
            "authorise every access by owner or share",
        ],
        "performance_requirements": [
            "p95 API latency under 300 ms at 50 concurrent users",
            format!("index {entities} by owner"),
        ],
        "testing_strategy": {
            "unit": "services and reducers",
            "integration": "API routes against a real PostgreSQL",
            "end_to_end": "sign up, add, share and complete an item in a browser",
        },
        "deployment_considerations": [
            "containers for the API and the database, configured by environment",
            "CI runs the tests on every push",
            "health endpoint and Prometheus scraping",
        ],
    });
    serde_json::to_string_pretty(&analysis).expect("a JSON value serialises")
}
