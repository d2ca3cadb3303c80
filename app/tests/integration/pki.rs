//! The certificate authority (证书管理) through HTTP: the CA made at first start, the public chain
//! and CRL, a staff certificate issued for a USB key's request (logging in once its holder bound it), a unit's
//! seal certificate, revocation that reaches the CRL and stops the log-in, and who may do it.

use axum::http::StatusCode;

use crate::{
    strong_login::{SM2_KEY, certificate_login},
    support::TestApp,
};

use crate::takeover::SM2_CSR;

pub(crate) async fn ca(app: &TestApp) -> tongban_pki::ca::CaService {
    let secrets = tongban_crypto::seal::SecretBox::load_or_create(&app.opened.config.secret_key_path()).expect("secret key");
    let ca = tongban_pki::ca::CaService::new(app.opened.db.clone(), app.opened.audit.clone(), secrets, &app.opened.config.public_url());
    assert!(ca.ensure().await.expect("CA"), "made at first start");
    assert!(!ca.ensure().await.expect("CA"), "and only then");
    ca
}

#[tokio::test]
async fn the_security_administrator_issues_and_revokes_and_the_crl_and_log_in_follow() {
    let app = TestApp::demo().await;
    let authority = ca(&app).await;
    let mut anyone = app.client();
    let chain = anyone.get("/pki/ca.pem").await;
    assert_eq!(chain.status, StatusCode::OK);
    assert_eq!(chain.body.matches("BEGIN CERTIFICATE").count(), 2, "issuing CA and root");
    let issuing = tongban_crypto::cert::parse_certificate(chain.body.as_bytes()).expect("the issuing CA first");
    assert!(issuing.subject.contains("签发CA"), "{}", issuing.subject);

    // Only the security administrator runs the CA.
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(sys.get("/admin/pki").await.status, StatusCode::FORBIDDEN);
    let mut staff = app.staff("xuhui").await;
    let r = staff.post_form("/me/sessions", "/admin/pki/staff", &[("username", "xuhui"), ("csr", SM2_CSR)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut sec = app.admin("secadmin").await;
    assert_eq!(sec.get("/admin/pki").await.status, StatusCode::OK);

    // A request whose signature does not verify is refused, naming the field; nothing stored.
    let tampered = SM2_CSR.replacen("MII", "MIJ", 1);
    let r = sec.post_form("/admin/pki", "/admin/pki/staff", &[("username", "xuhui"), ("csr", &tampered)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"pki-error\""), "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM pki_certificates").await, 0);

    // Issued for the USB key's request: the subject comes from the account; it logs in at once.
    let r = sec.post_form("/admin/pki", "/admin/pki/staff", &[("username", "xuhui"), ("csr", SM2_CSR)]).await;
    assert_eq!(r.location(), "/admin/pki?done=certificate_issued", "{}", r.body);
    let serial = app.scalar_text("SELECT serial FROM pki_certificates WHERE profile = 'staff'").await;
    let pem = anyone.get(&format!("/pki/certificates/{serial}")).await.body;
    let cert = tongban_crypto::cert::parse_certificate(pem.as_bytes()).expect("issued certificate");
    assert!(cert.subject.contains("CN=徐辉") && cert.subject.contains("住房和城乡建设局"), "{}", cert.subject);
    assert_eq!(cert.issuer, issuing.subject);
    let mut usb = app.client();
    assert_eq!(certificate_login(&mut usb, &pem, SM2_KEY).await.status, StatusCode::UNAUTHORIZED, "issuing binds nothing");
    let mut xuhui = crate::takeover::staff_with_second_factor(&app, "xuhui").await;
    let r = crate::takeover::bind_own(&mut xuhui, &pem, SM2_KEY).await;
    assert_eq!(r.location(), "/me/certificates?done=certificate_bound", "{}", r.body);
    assert_eq!(certificate_login(&mut usb, &pem, SM2_KEY).await.status, StatusCode::OK, "logs in once its holder bound it");

    // A unit's seal certificate: the key is made here and kept sealed, never as plain bytes.
    let unit = app.unit_id("自然资源局").await;
    let r = sec.post_form("/admin/pki", "/admin/pki/seal", &[("unit_id", &unit.to_string()), ("algorithm", "sm2")]).await;
    assert_eq!(r.location(), "/admin/pki?done=certificate_issued");
    let sealed = app.scalar_text("SELECT key_sealed FROM pki_certificates WHERE profile = 'seal'").await;
    assert!(sealed.len() > 60, "a sealed key is stored");
    let r = sec.post_form("/admin/pki", "/admin/pki/seal", &[("unit_id", &unit.to_string()), ("algorithm", "rsa")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Revocation: the CRL lists it and the certificate logs in no more.
    let crl_before = anyone.get("/pki/ca.crl").await;
    assert_eq!(crl_before.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/pkix-crl"));
    let r = sec.post_form("/admin/pki", &format!("/admin/pki/{serial}/revoke"), &[("reason", "9")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "no such reason");
    let r = sec.post_form("/admin/pki", &format!("/admin/pki/{serial}/revoke"), &[("reason", "1")]).await;
    assert_eq!(r.location(), "/admin/pki?done=certificate_revoked");
    assert_eq!(anyone.get("/pki/ca.crl").await.status, StatusCode::OK);
    let der = authority.crl().await.expect("crl");
    let serial_bytes = hex_decode(&serial);
    assert!(der.windows(serial_bytes.len()).any(|w| w == serial_bytes.as_slice()), "the revoked serial is listed");
    let mut late = app.client();
    assert_eq!(certificate_login(&mut late, &pem, SM2_KEY).await.status, StatusCode::UNAUTHORIZED);
    let r = sec.post_form("/admin/pki", &format!("/admin/pki/{serial}/revoke"), &[("reason", "1")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already revoked");
    assert_eq!(app.audit_count("pki.issue", "success").await, 2);
    assert_eq!(app.audit_count("pki.revoke", "success").await, 1);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

/// A seal image (a red ring and cross, 64 × 64 PNG with transparency).
pub(crate) const SEAL_PNG: &[u8] = include_bytes!("../../../crates/documents/tests/seal.png");

#[tokio::test]
async fn a_unit_seals_a_document_and_anyone_verifies_it() {
    let app = TestApp::demo().await;
    let authority = ca(&app).await;
    let mut sec = app.admin("secadmin").await;
    let hall = app.unit_id("行政审批服务局（政务服务中心）").await;
    let land = app.unit_id("自然资源局").await;
    let register = |unit: i64| (unit.to_string(), "seal.png");

    // No seal certificate yet: the image alone is refused; so is an image that is not a PNG.
    let (u, f) = register(hall);
    let r = sec.post_multipart_bytes("/admin/pki", "/admin/pki/seals", &[("unit_id", &u)], ("image", f, SEAL_PNG)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for unit in [hall, land] {
        let r = sec.post_form("/admin/pki", "/admin/pki/seal", &[("unit_id", &unit.to_string()), ("algorithm", "sm2")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    let r = sec.post_multipart_bytes("/admin/pki", "/admin/pki/seals", &[("unit_id", &u)], ("image", f, b"GIF89a not a png")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for unit in [hall, land] {
        let (u, f) = register(unit);
        let r = sec.post_multipart_bytes("/admin/pki", "/admin/pki/seals", &[("unit_id", &u)], ("image", f, SEAL_PNG)).await;
        assert_eq!(r.location(), "/admin/pki?done=seal_registered", "{}", r.body);
    }

    // The service hall's unit administrator (seal.use over her unit) sees her unit's seal only.
    let mut office = app.staff("zhaomin").await;
    let page = office.get("/seals").await;
    assert!(page.body.contains("行政审批服务局") && !page.body.contains("自然资源局"), "{}", page.body);
    let hall_seal = app.scalar(&format!("SELECT id FROM seals WHERE unit_id = {hall}")).await.to_string();
    let land_seal = app.scalar(&format!("SELECT id FROM seals WHERE unit_id = {land}")).await.to_string();
    let fields = |seal: &str| {
        vec![
            ("seal_id", seal.to_string()),
            ("title", "关于公布政务服务事项目录的通知".to_string()),
            ("doc_number", "嘉审批发〔2026〕3号".to_string()),
        ]
    };
    let document = "%PDF-1.7 嘉禾县行政审批服务局 通知正文".as_bytes();
    let f = fields(&land_seal);
    let r = office.post_multipart_bytes("/seals", "/seals", &refs(&f), ("file", "notice.pdf", document)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another unit's seal");
    let mut clerk = app.staff("xuhui").await;
    let f = fields(&hall_seal);
    let r = clerk.post_multipart_bytes("/me/sessions", "/seals", &refs(&f), ("file", "notice.pdf", document)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no seal.use");
    let r = office.post_multipart_bytes("/seals", "/seals", &refs(&f), ("file", "notice.pdf", document)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers.get("content-disposition").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(".tbseal.json")));
    let package = r.body.clone();
    assert_eq!(app.audit_count("seal.use", "success").await, 1);

    // Anyone verifies it; a changed byte in the document is reported; so is a revoked certificate.
    let mut anyone = app.client();
    let r = anyone.post_multipart("/verify", "/verify", &[], ("package", "notice.tbseal.json", &package)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("印章有效") && r.body.contains("行政审批服务局"), "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&package).expect("json");
    let mut file = base64_decode(v["file"].as_str().unwrap_or_default());
    file[5] ^= 1;
    let mut tampered = v.clone();
    tampered["file"] = serde_json::Value::String(base64_encode(&file));
    let r = anyone.post_multipart("/verify", "/verify", &[], ("package", "x.json", &tampered.to_string())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("已被改动"), "{}", r.body);
    let serial = app.scalar_text(&format!("SELECT serial FROM pki_certificates WHERE holder_id = {hall} AND profile = 'seal'")).await;
    let r = sec.post_form("/admin/pki", &format!("/admin/pki/{serial}/revoke"), &[("reason", "5")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let report = authority.verify(package.as_bytes()).await.expect("verify");
    assert_eq!(report.certificate_status, "revoked");
    assert!(report.content_intact && report.signature_valid && !report.ok());
    assert!(office.get("/seals").await.body.contains("id=\"no-seals\""), "a revoked seal is no longer offered");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
