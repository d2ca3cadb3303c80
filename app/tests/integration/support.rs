//! TestApp: a tongban instance on a fresh database, and a cookie-keeping client.

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use tongban::boot::{Opened, open};
use tongban_platform::Config;
use tower::ServiceExt;

pub const DEMO_PASSWORD: &str = tongban_identity::demo::DEMO_PASSWORD;

/// A running application on its own database and data directory.
pub struct TestApp {
    pub opened: Opened,
    pub router: Router,
    _dir: tempfile::TempDir,
}

async fn fresh_database_url(dir: &std::path::Path) -> String {
    let Ok(admin_url) = std::env::var("TONGBAN_TEST_DATABASE_URL") else {
        return format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
    };
    let name = format!("tb_test_{}", rand::random::<u64>());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await.expect("connect to the test PostgreSQL server");
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
    format!("{base}/{name}")
}

impl TestApp {
    /// A fresh app with the demo county loaded.
    pub async fn demo() -> TestApp {
        Self::with(|_| {}, true).await
    }

    /// A fresh app, configured by `tweak`, with or without demo data.
    pub async fn with(tweak: impl FnOnce(&mut Config), demo: bool) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        config.database.url = fresh_database_url(dir.path()).await;
        config.database.max_connections = 4;
        config.server.trust_forwarded_for = true;
        tweak(&mut config);
        if demo && config.security.second_factor_required.is_none() {
            // As `serve --demo` does: the demo's staff log in without a second factor.
            config.security.second_factor_required = Some(tongban_platform::config::SecondFactorRequired::Administrators);
        }
        let opened = open(config).await.expect("open app");
        if demo {
            tongban::boot::load_demo(&opened).await.expect("demo data");
        }
        let state = tongban_web::AppState::new(opened.identity.clone(), opened.config.clone(), None)
            .with_calendar(opened.calendar.clone())
            .with_workflow(opened.workflow.clone())
            .with_catalogue(opened.catalogue.clone())
            .with_intake(opened.intake.clone())
            .with_cases(opened.cases.clone());
        TestApp { router: tongban_web::router(state), opened, _dir: dir }
    }

    /// A new client without cookies.
    pub fn client(&self) -> Client {
        Client { router: self.router.clone(), cookies: HashMap::new(), ip: "198.51.100.7".into() }
    }

    /// A client logged in as a demo staff member without TOTP (completes the log-in).
    pub async fn staff(&self, username: &str) -> Client {
        let mut c = self.client();
        let r = c.login(username, DEMO_PASSWORD).await;
        assert_eq!(r.location(), "/workbench", "{username} should log in directly");
        c
    }

    /// A client logged in as a demo administrator, enrolling TOTP on the way.
    pub async fn admin(&self, username: &str) -> Client {
        let mut c = self.client();
        let r = c.login(username, DEMO_PASSWORD).await;
        assert_eq!(r.location(), "/login/enrol", "{username} must enrol TOTP");
        c.enrol_totp("/login/enrol").await;
        c
    }

    /// Runs a statement directly on the database (to simulate an attacker or time passing).
    pub async fn sql(&self, statement: &str) {
        sqlx::raw_sql(statement).execute(self.opened.db.pool()).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// One integer from the database.
    pub async fn scalar(&self, query: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(query).fetch_one(self.opened.db.pool()).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0)
    }

    /// One text value from the database.
    pub async fn scalar_text(&self, query: &str) -> String {
        use sqlx::Row;
        sqlx::query(query).fetch_one(self.opened.db.pool()).await.unwrap_or_else(|e| panic!("{query}: {e}")).get(0)
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.opened.db.kind() == tongban_platform::DbKind::Postgres
    }

    /// Id of a demo unit by name.
    pub async fn unit_id(&self, name: &str) -> i64 {
        self.scalar(&format!("SELECT id FROM units WHERE name = '{name}'")).await
    }

    /// Id of an account by user name.
    pub async fn user_id(&self, username: &str) -> i64 {
        self.scalar(&format!("SELECT id FROM users WHERE username = '{username}'")).await
    }

    /// Audit records with this action and result.
    pub async fn audit_count(&self, action: &str, result: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND result = '{result}'")).await
    }
}

/// A response with its body read.
pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Text of the element with this id, e.g. `<code id="totp-secret">…</code>`.
    pub fn element_text(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\">");
        let start = self.body.find(&marker).unwrap_or_else(|| panic!("no element #{id} in {}", self.body)) + marker.len();
        let end = self.body[start..].find('<').map(|e| start + e).unwrap_or(self.body.len());
        self.body[start..end].trim().to_string()
    }
}

/// A browser-like client: keeps cookies, sends the CSRF token with forms.
pub struct Client {
    router: Router,
    pub cookies: HashMap<String, String>,
    pub ip: String,
}

impl Client {
    pub async fn send(&mut self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible router");
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let s = v.to_str().unwrap_or("");
            if let Some((kv, _)) = s.split_once(';').or(Some((s, "")))
                && let Some((k, v)) = kv.split_once('=')
            {
                if s.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Resp { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn builder(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::COOKIE, self.cookie_header())
            .header("x-forwarded-for", self.ip.clone())
            .header(header::USER_AGENT, "tongban-tests")
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.builder(Method::GET, path).body(Body::empty()).expect("request");
        self.send(req).await
    }

    /// The CSRF token a page would embed: found in the last page's hidden field.
    pub async fn csrf(&mut self, page: &str) -> String {
        let r = self.get(page).await;
        let marker = "name=\"_csrf\" value=\"";
        let start = r.body.find(marker).unwrap_or_else(|| panic!("no CSRF field on {page}: {} {}", r.status, r.body)) + marker.len();
        r.body[start..start + 43].to_string()
    }

    /// Posts a form with the CSRF token taken from `page`.
    pub async fn post_form(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> Resp {
        let token = self.csrf(page).await;
        let mut all: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw_form(path, &all).await
    }

    /// Posts a form exactly as given (no CSRF token added).
    pub async fn post_raw_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(fields).expect("form");
        let req = self
            .builder(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    /// Sends JSON with a session cookie and the session's CSRF header.
    pub async fn json(&mut self, method: Method, path: &str, body: serde_json::Value) -> Resp {
        let token = self.csrf("/me/tokens").await;
        let req = self
            .builder(method, path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", token)
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }

    /// Posts `multipart/form-data` (a file upload) with the CSRF token taken from `page`.
    pub async fn post_multipart(&mut self, page: &str, path: &str, fields: &[(&str, &str)], file: (&str, &str, &str)) -> Resp {
        self.post_multipart_bytes(page, path, fields, (file.0, file.1, file.2.as_bytes())).await
    }

    /// Posts `multipart/form-data` with a binary file.
    pub async fn post_multipart_bytes(&mut self, page: &str, path: &str, fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> Resp {
        let token = self.csrf(page).await;
        let boundary = "tongbanTestBoundary7MA4YWxkTrZu0gW";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n").into_bytes();
        for (k, v) in fields {
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").into_bytes());
        }
        let (name, filename, content) = file;
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .into_bytes(),
        );
        body.extend_from_slice(content);
        body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        let req = self
            .builder(Method::POST, path)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    /// A second client sharing this one's session (cookies).
    pub fn clone_session(&self) -> Client {
        Client { router: self.router.clone(), cookies: self.cookies.clone(), ip: self.ip.clone() }
    }

    /// Sends a raw body with a content type, a session cookie and the session's CSRF header.
    pub async fn raw(&mut self, method: Method, path: &str, content_type: &str, body: &str) -> Resp {
        let token = self.csrf("/me/tokens").await;
        let req = self
            .builder(method, path)
            .header(header::CONTENT_TYPE, content_type)
            .header("x-csrf-token", token)
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }

    /// Sends a request as another system would: these headers, this body, no CSRF token.
    pub async fn request(&mut self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut b = self.builder(method, path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body.to_string())).expect("request");
        self.send(req).await
    }

    /// Logs in with a password (the first step only).
    pub async fn login(&mut self, username: &str, password: &str) -> Resp {
        self.post_form("/login", "/login", &[("username", username), ("password", password)]).await
    }

    /// Enrols TOTP on the page at `path`; returns the secret. Uses the previous time step's code
    /// so that the current step stays usable for the next log-in.
    pub async fn enrol_totp(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let secret = page.element_text("totp-secret");
        let code = totp_code(&secret, -30);
        let r = self.post_form(path, path, &[("totp_code", &code)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("recovery-codes"), "recovery codes shown");
        secret
    }
}

/// The TOTP code for now + `offset_seconds`. Near the end of a 30-second step it first waits for
/// the next step, so that the code is still accepted when the server checks it.
pub fn totp_code(secret: &str, offset_seconds: i64) -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let into_step = (millis % 30_000) as u64;
    if into_step > 27_000 {
        std::thread::sleep(std::time::Duration::from_millis(30_000 - into_step + 50));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    tongban_crypto::totp::code_at(secret, (now + offset_seconds) as u64).expect("code")
}
