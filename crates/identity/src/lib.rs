//! The identity slice (统一身份): the public realm of citizens and enterprises (公众用户), and regions (GB/T 2260), the units tree (组织机构),
//! staff accounts (工作人员), credentials (password, TOTP, recovery codes), log-in with
//! lock-out, sessions and personal API tokens, plus first-run set-up and the demo county.

mod certificates;
pub mod demo;
pub mod idcheck;
mod login;
mod login_codes;
mod model;
mod passkeys;
mod public;
mod regions;
mod service;
mod sessions;
mod setup;
mod throttle;
mod tokens;
mod units;
mod users;

pub use certificates::{BoundCertificate, CERTIFICATE_AMR, CertificateChallenge, CertificateStatus, CertificateTrust};
pub use login::{LoginResult, Stage, TotpEnrolment};
pub use login_codes::{CodeLogin, LoginOtp, OTP_AMR};
pub use model::{ApiTokenInfo, NewUser, Region, SessionInfo, Unit, UnitInput, UnitKind, User, UserProfile};
pub use passkeys::{PASSKEY_AMR, PasskeyChallenge, PasskeyInfo, PasskeyLogin, PasskeyOwner, PasskeyParty};
pub use public::{PublicKind, PublicPrincipal, PublicRegistration};
pub use regions::valid_region_code;
pub use service::IdentityService;
pub use sessions::{AuthSession, NewApiToken};
pub use setup::InitialAdmin;

/// Which accounts a realm serves (用户域): staff log in to internal systems, the public to
/// citizen services; credentials, sessions and tokens never cross between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Realm {
    /// Staff of the county's units (政务人员).
    Staff,
    /// Citizens and enterprises (公众).
    Public,
}

impl Realm {
    /// The name in URLs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Staff => "staff",
            Realm::Public => "public",
        }
    }

    /// Parses a URL segment.
    pub fn parse(s: &str) -> Option<Realm> {
        match s {
            "staff" => Some(Realm::Staff),
            "public" => Some(Realm::Public),
            _ => None,
        }
    }
}
