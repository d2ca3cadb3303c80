//! The identity slice (统一身份): the public realm of citizens and enterprises (公众用户), and regions (GB/T 2260), the units tree (组织机构),
//! staff accounts (工作人员), credentials (password, TOTP, recovery codes), log-in with
//! lock-out, sessions and personal API tokens, plus first-run set-up and the demo county.

pub mod demo;
pub mod idcheck;
mod login;
mod model;
mod public;
mod regions;
mod service;
mod sessions;
mod setup;
mod tokens;
mod units;
mod users;

pub use login::{LoginResult, Stage, TotpEnrolment};
pub use model::{ApiTokenInfo, NewUser, Region, SessionInfo, Unit, UnitInput, UnitKind, User, UserProfile};
pub use public::{PublicKind, PublicPrincipal, PublicRegistration};
pub use regions::valid_region_code;
pub use service::IdentityService;
pub use sessions::{AuthSession, NewApiToken};
pub use setup::InitialAdmin;
