//! The HTTP skeleton: errors in both shapes, 404/405/413, malformed input, OpenAPI, operations
//! endpoints, security headers and languages.

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn unknown_routes_wrong_methods_and_oversized_bodies() {
    let app = TestApp::with(|c| c.server.max_body_bytes = 4096, true).await;
    let mut c = app.client();
    let r = c.get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("页面不存在"));
    let r = c.get("/api/v1/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["code"], "not_found");
    let token = c.csrf("/login").await;
    let r = c
        .send(
            Request::builder()
                .method(Method::DELETE)
                .uri("/healthz")
                .header("cookie", format!("tb_csrf={token}"))
                .header("x-csrf-token", token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let mut staff = app.staff("zhaomin").await;
    let big = "x".repeat(10_000);
    let r = staff.json(Method::POST, "/api/v1/tokens", json!({"name": big, "days": 1})).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = staff.post_form("/me/tokens", "/me/tokens", &[("name", &big), ("days", "1")]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_json_and_paths_name_the_field() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": "x", "kind": "department"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "parent_id");
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": 5, "kind": "department", "parent_id": 1})).await;
    assert_eq!(r.json()["field"], "name");
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": "x", "kind": "planet", "parent_id": 1})).await;
    assert_eq!(r.json()["field"], "kind");
    assert_eq!(r.json()["message"], "类型: 不是可选的值。");
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": "x", "kind": "department", "parent_id": 1, "extra": true})).await;
    assert_eq!(r.json()["field"], "extra");
    let r = sys.json(Method::GET, "/api/v1/users/abc", json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "id");
    let r = sys.get("/api/v1/users?unit_id=abc").await;
    assert_eq!(r.json()["field"], "unit_id");
    // Broken JSON.
    let token = sys.csrf("/me/tokens").await;
    let cookie = sys.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let req = Request::post("/api/v1/units")
        .header("host", "localhost")
        .header("cookie", cookie)
        .header("x-csrf-token", token)
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let r = sys.send(req).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["code"], "invalid");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'unit.create'").await, 0, "nothing half-written");
}

#[tokio::test]
async fn english_is_chosen_by_header_or_switch() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let r = c.send(Request::get("/login").header("accept-language", "en-GB,en;q=0.9").body(Body::empty()).unwrap()).await;
    assert!(r.body.contains("Staff log-in") && r.body.contains("lang=\"en\""));
    let r = c.get("/lang/en").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = c.login("zhangwei", "Wrong#pass1").await;
    assert!(r.body.contains("Wrong user name or password"), "{}", r.body);
    let r = c.get("/api/v1/me").await;
    assert_eq!(r.json()["message"], "Please log in.");
}

#[tokio::test]
async fn security_headers_and_cookie_flags() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let r = c.get("/login").await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["referrer-policy"], "same-origin");
    assert!(r.headers.get("strict-transport-security").is_none(), "no HSTS without TLS");
    let r = c.login("zhangwei", crate::support::DEMO_PASSWORD).await;
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let tls = TestApp::with(|c| c.security.secure_cookies = true, true).await;
    let mut c = tls.client();
    let r = c.login("zhangwei", crate::support::DEMO_PASSWORD).await;
    assert!(r.headers["set-cookie"].to_str().unwrap().contains("Secure"));
}

#[tokio::test]
async fn openapi_health_readiness_and_metrics() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let spec = c.get("/api/openapi.json").await.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/v1/units", "/api/v1/users/{id}/grants", "/api/v1/audit", "/api/v1/tokens"] {
        assert!(spec["paths"][path].is_object(), "{path} documented");
    }
    let docs = c.get("/api/docs").await;
    assert!(docs.body.contains("/api/v1/users") && docs.body.contains("POST"));
    assert_eq!(c.get("/healthz").await.body, "ok");
    assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    let m = c.send(metrics_request("127.0.0.1:40000", None)).await;
    assert!(m.body.contains("tongban_db_pool_connections") && m.body.contains("tongban_jobs{status=\"queued\"}"));
}

/// `GET /metrics` as a peer at `peer` would send it straight to the server (no proxy headers).
fn metrics_request(peer: &str, authorization: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let mut b = axum::http::Request::builder().uri("/metrics");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    let mut req = b.body(axum::body::Body::empty()).expect("request");
    let addr: std::net::SocketAddr = peer.parse().expect("address");
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    req
}

/// Attack test (issue 13, finding 19): `/metrics` lists routes and administrative activity, so
/// a remote caller gets 404; a loopback peer reads it, unless the request came through a proxy;
/// with `server.metrics_token` the token is needed from everywhere; with `server.metrics_bind`
/// the main listener has no `/metrics` at all.
#[tokio::test]
async fn metrics_are_for_this_machine_or_the_token_holder_only() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let remote = c.send(metrics_request("203.0.113.7:5555", None)).await;
    assert_eq!(remote.status, StatusCode::NOT_FOUND, "a remote caller without a token sees no metrics");
    assert!(!remote.body.contains("http_requests_total") && !remote.body.contains("tongban_jobs"));
    let r = c.get("/metrics").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no known peer (and a forwarded request) is not local");
    let mut proxied = metrics_request("127.0.0.1:40000", None);
    proxied.headers_mut().insert("x-forwarded-for", axum::http::HeaderValue::from_static("203.0.113.7"));
    assert_eq!(c.send(proxied).await.status, StatusCode::NOT_FOUND, "through a local reverse proxy is not local");
    let local = c.send(metrics_request("[::1]:40000", None)).await;
    assert_eq!(local.status, StatusCode::OK);
    assert!(local.body.contains("tongban_outbox_pending"));

    const TOKEN: &str = "scrape-me-9f2c1d7e4b";
    let app = TestApp::with(|c| c.server.metrics_token = TOKEN.into(), true).await;
    let mut c = app.client();
    for (peer, auth) in [("203.0.113.7:5555", None), ("127.0.0.1:40000", None), ("203.0.113.7:5555", Some("Bearer wrong-token-0000000"))] {
        let r = c.send(metrics_request(peer, auth)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{peer} {auth:?}");
        assert!(!r.body.contains("tongban_jobs"));
    }
    for scheme in ["Bearer", "bearer"] {
        let r = c.send(metrics_request("203.0.113.7:5555", Some(&format!("{scheme} {TOKEN}")))).await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
        assert!(r.body.contains("tongban_jobs{status=\"queued\"}"));
    }

    let app = TestApp::with(|c| c.server.metrics_bind = "127.0.0.1:9464".into(), true).await;
    let mut c = app.client();
    let r = c.send(metrics_request("127.0.0.1:40000", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "served on its own listener only");
    let state = tongban_web::AppState::new(app.opened.identity.clone(), app.opened.config.clone(), None);
    let r = tower::ServiceExt::oneshot(tongban_web::metrics_router(state), metrics_request("198.51.100.5:5555", None))
        .await
        .expect("infallible");
    assert_eq!(r.status(), StatusCode::OK, "the dedicated listener serves whoever can reach its address");

    let mut bad = tongban_platform::Config::default();
    bad.server.metrics_bind = "localhost".into();
    assert!(bad.validate().unwrap_err().to_string().contains("server.metrics_bind"));
}

#[tokio::test]
async fn a_fresh_install_has_no_account_until_init() {
    let app = TestApp::with(|_| {}, false).await;
    let mut c = app.client();
    assert_eq!(c.login("admin", "admin").await.status, StatusCode::UNAUTHORIZED);
    let admins = app.opened.identity.init("县人民政府").await.unwrap();
    assert_eq!(admins.iter().map(|a| a.username.as_str()).collect::<Vec<_>>(), ["sysadmin", "secadmin", "auditor"]);
    assert!(app.opened.identity.init("again").await.is_err(), "init runs once");
    let r = c.login("sysadmin", &admins[0].password).await;
    assert_eq!(r.location(), "/login/password", "one-time password must be changed first");
}

/// Attack test (issue 13, finding 24): the OpenAPI document must match the API. Query parameters
/// are declared in the query, every success answer with a JSON body names its schema (arrays where
/// the API answers arrays), and every operation documents 401, 403, 404, 409 and 422 with the
/// `{code, message, field?}` body. The live answers of the two that were wrong are arrays.
#[tokio::test]
async fn the_openapi_document_describes_parameters_bodies_and_errors_as_the_api_answers() {
    let app = TestApp::demo().await;
    let mut c = app.staff("liuyang").await;
    let spec = c.get("/api/openapi.json").await.json();
    let paths = spec["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (inside, param) = (p["in"].as_str().unwrap_or(""), p["name"].as_str().unwrap_or(""));
                assert_eq!(inside == "path", path.contains(&format!("{{{param}}}")), "{name}: parameter {param} is in {inside}");
            }
            let responses = op["responses"].as_object().expect("responses");
            for (status, r) in responses {
                let Some(schema) = r.pointer("/content/application~1json/schema") else { continue };
                if status.starts_with('2') {
                    let typed = schema.get("$ref").is_some()
                        || schema.get("items").is_some()
                        || schema.get("properties").is_some()
                        || schema.get("oneOf").is_some();
                    assert!(typed, "{name} {status}: untyped body {schema}");
                }
            }
            if path.starts_with("/api/v1/") {
                for status in ["401", "403", "404", "409", "422"] {
                    let schema = &responses.get(status).unwrap_or_else(|| panic!("{name}: {status} undocumented"))["content"]["application/json"]
                        ["schema"];
                    assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{name} {status}");
                }
            }
        }
    }
    assert!(operations >= 60, "{operations} operations");
    let error = &spec["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["code", "message"]));
    assert!(error["properties"]["field"].is_object());

    for (path, live) in [("/api/v1/cases", "/api/v1/cases?list=all"), ("/api/v1/inbox", "/api/v1/inbox")] {
        let schema = &spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(schema["type"], "array", "{path}: {schema}");
        let r = c.get(live).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(r.json().is_array(), "{path} answers an array");
    }
    let tasks = &spec["paths"]["/api/v1/workflow/tasks"]["get"]["parameters"];
    assert!(tasks.as_array().is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["in"] == "query")), "{tasks}");
}
