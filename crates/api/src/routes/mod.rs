//! Handlers, one module per resource.

pub mod changes;
pub mod designs;
pub mod events;
pub mod files;
pub mod plans;
pub mod projects;
pub mod system;
pub mod tasks;
pub mod verification;
