//! Demo relying parties (演示接入系统), so that a newcomer sees single sign-on work: the county's
//! legacy OA (confidential, first-party, no consent screen), the 12345 hotline system (a public
//! browser client with PKCE that asks for consent), a data-exchange service using client
//! credentials, and the citizens' app in the public realm. The secrets are published here: demo
//! data only.

use tongban_audit::Actor;
use tongban_platform::error::DomainResult;

use crate::{
    Realm,
    clients::{ClientRegistry, ClientSpec},
};

/// The legacy OA's demo secret.
pub const LEGACY_OA_SECRET: &str = "demo-legacy-oa-secret-change-me";
/// The data-exchange service's demo secret.
pub const EXCHANGE_SECRET: &str = "demo-exchange-secret-change-me";

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Registers the demo clients that are not there yet; answers how many were added.
pub async fn load(clients: &ClientRegistry) -> DomainResult<usize> {
    let actor = Actor {
        user_id: None,
        name: "demo".into(),
        unit: String::new(),
        ip: String::new(),
        user_agent: String::new(),
        purpose: String::new(),
    };
    let demo: [(Realm, ClientSpec, Option<&str>); 4] = [
        (
            Realm::Staff,
            ClientSpec {
                client_id: "legacy-oa".into(),
                name: "嘉禾县协同办公系统（旧OA）".into(),
                confidential: true,
                redirect_uris: list(&["http://127.0.0.1:9101/callback"]),
                post_logout_uris: list(&["http://127.0.0.1:9101/"]),
                scopes: list(&["openid", "profile", "email", "unit", "roles", "offline_access"]),
                grants: list(&["authorization_code", "refresh_token"]),
                first_party: true,
                ..ClientSpec::default()
            },
            Some(LEGACY_OA_SECRET),
        ),
        (
            Realm::Staff,
            ClientSpec {
                client_id: "hotline-12345".into(),
                name: "12345政务服务便民热线系统".into(),
                confidential: false,
                redirect_uris: list(&["http://127.0.0.1:9102/callback"]),
                post_logout_uris: list(&["http://127.0.0.1:9102/"]),
                scopes: list(&["openid", "profile", "phone", "unit", "roles"]),
                grants: list(&["authorization_code", "refresh_token"]),
                ..ClientSpec::default()
            },
            None,
        ),
        (
            Realm::Staff,
            ClientSpec {
                client_id: "data-exchange".into(),
                name: "数据交换平台".into(),
                confidential: true,
                scopes: list(&["unit", "roles"]),
                grants: list(&["client_credentials"]),
                access_ttl: 600,
                ..ClientSpec::default()
            },
            Some(EXCHANGE_SECRET),
        ),
        (
            Realm::Public,
            ClientSpec {
                client_id: "citizen-app".into(),
                name: "嘉禾通办移动端".into(),
                confidential: false,
                redirect_uris: list(&["http://127.0.0.1:9103/callback"]),
                post_logout_uris: list(&["http://127.0.0.1:9103/"]),
                scopes: list(&["openid", "profile", "phone", "email"]),
                grants: list(&["authorization_code", "refresh_token"]),
                first_party: true,
                ..ClientSpec::default()
            },
            None,
        ),
    ];
    let mut added = 0;
    for (realm, spec, secret) in demo {
        if clients.find(realm, &spec.client_id).await?.is_none() {
            clients.insert_with_secret(&actor, realm, &spec, secret).await?;
            added += 1;
        }
    }
    Ok(added)
}
