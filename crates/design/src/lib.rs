//! The design a project's agents are held to, fixed after the requirements analysis and
//! before any code: the generated application's HTTP contract (an OpenAPI 3.1 document),
//! its data model, its components (directory, commands, packages, environment, port and
//! health URL) and its file plan (every file, the task that owns it, what it exports and
//! what it imports).
//!
//! Everything here is pure: [`Design::from_value`] reads a design (a model's, once parsed as JSON),
//! [`Design::check`] says what is wrong with a design for a task graph (parsing the
//! contract with the `oas3` crate), and [`Design::conformance`] says what a task's files
//! got wrong against their plan. The agents render prompts from it, the worker's
//! verification runs its commands and calls its operations.

mod builtins;
mod check;
mod conformance;
mod contract;
mod model;

pub use check::GraphTask;
pub use conformance::{Nonconformity, NonconformityKind, WrittenFile, undefined_routes};
pub use contract::{Operation, Response};
pub use model::{
    Column, Commands, Component, DataModel, Design, EnvVar, PlannedFile, SHARED_COMPONENT, Table,
};
