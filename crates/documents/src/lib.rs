//! The documents slice (公文): the elements of GB/T 9704-2012 as structured fields, drafts, and
//! document numbers (发文字号) per unit and year without gaps or repeats, attachments, the issuing
//! and receiving flows, and the exchange between units.

mod attachments;
mod exchange;
mod flow;
mod groups;
mod model;
pub mod render;
mod service;

pub use attachments::{Attachment, MAX_ATTACHMENTS};
pub use exchange::{Delivery, IssueRequest, receipt_verifies};
pub use flow::{Countersign, DocumentFlowReceiver, FAWEN, FAWEN_BPMN, MAX_COUNTERSIGN_UNITS, SHOUWEN, SHOUWEN_BPMN, Submission};
pub use groups::{DistributionGroup, MAX_GROUP_MEMBERS};
pub use model::{DocumentFields, URGENCIES, check_prefix, format_number};
pub use service::{Document, DocumentService};
