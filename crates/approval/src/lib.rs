//! Online administrative approval (网上行政审批). This first part holds the service catalogue
//! (事项目录) with its public service guides (办事指南), the application form definitions and their
//! validation, and the check characters of identity numbers and credit codes.

pub mod cases;
pub mod catalogue;
pub mod demo;
pub mod form;
pub mod intake;
pub mod result;
pub use tongban_identity::idcheck;
pub mod service;
pub use tongban_platform::upload;
pub mod zone;

pub use service::CatalogueService;
