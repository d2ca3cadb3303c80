//! Workflow slice (工作流): a BPMN 2.0 subset engine and the service that stores definitions,
//! instances and tasks.
//!
//! - [`parse::parse_bpmn`] reads and validates a `.bpmn` file into a [`ProcessDefinition`];
//! - [`engine::Instance`] runs it: pure, deterministic state transitions with no I/O;
//! - [`service::WorkflowService`] persists definitions (versioned), instances and tasks, each change
//!   in one transaction with its audit record and outbox events.

pub mod definition;
pub mod diagram;
pub mod engine;
pub mod error;
pub mod expr;
pub mod parse;
pub mod service;
pub mod store;
pub mod validate;

#[cfg(test)]
mod engine_tests;

pub use definition::ProcessDefinition;
pub use engine::{Actor, Completion, Effect, Instance, InstanceStatus, Task, TaskStatus};
pub use error::{DefinitionError, EngineError};
pub use parse::parse_bpmn;
pub use service::{TaskAction, TaskList, WorkflowService};
