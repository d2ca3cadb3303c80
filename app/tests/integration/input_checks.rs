//! Text and files from outside: control and text-direction characters, invisible titles, and
//! `.ofd` files that are not OFD packages or inflate to far more than they weigh (ZIP bombs) are
//! refused with a localised 422 naming the field.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{approval::citizen, support::TestApp};

/// A ZIP of (name, content) entries, deflated; `declared` overrides the uncompressed sizes
/// written in the directory for entries other than `OFD.xml`.
fn zip(entries: &[(&str, &[u8])], declared: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content) in entries {
        let data = miniz_oxide::deflate::compress_to_vec(content, 9);
        let size = declared.filter(|_| *name != "OFD.xml").unwrap_or(content.len() as u32);
        let offset = out.len() as u32;
        let head = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend(0u16.to_le_bytes());
            h.extend(8u16.to_le_bytes());
            h.extend([0u8; 8]);
            h.extend((data.len() as u32).to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            if central {
                h.extend([0u8; 12]);
                h.extend(offset.to_le_bytes());
            } else {
                h.extend(0u16.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        central.extend(head(b"PK\x01\x02", true));
        out.extend(head(b"PK\x03\x04", false));
        out.extend(&data);
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06\0\0\0\0");
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[tokio::test]
async fn names_and_titles_with_control_or_direction_characters_are_refused() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": "嘉禾县\u{202E}局务政", "kind": "department", "parent_id": 1})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")), "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("文字方向")), "{}", r.body);
    let r = sys.json(Method::POST, "/api/v1/units", json!({"name": "嘉禾县\u{0}局", "kind": "department", "parent_id": 1})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")), "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("控制字符")), "{}", r.body);
    let unit = app.scalar("SELECT unit_id FROM users WHERE username = 'liuyang'").await;
    let r = sys.json(Method::POST, "/api/v1/users", json!({"username": "liuyang2", "display_name": "刘\u{202E}洋", "unit_id": unit})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("display_name")), "{}", r.body);

    let mut clerk = app.staff("liuyang").await;
    let r = clerk
        .json(Method::POST, "/api/v1/workflow/instances", json!({"process": "individual_business", "title": "\u{200B}\u{200C}\u{FEFF}"}))
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("title")), "{}", r.body);
    let r = clerk
        .json(
            Method::POST,
            "/api/v1/documents",
            json!({"urgency": "加急", "issuer_mark": "嘉禾县行政审批服务局文件", "title": "\u{200B}\u{2060}", "main_recipients": "各乡镇：",
                   "body": "正文。\n第二段。", "issuing_authority": "嘉禾县行政审批服务局", "date": "2026-11-30"}),
        )
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("title")), "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("不可见")), "{}", r.body);
    // Multi-line text keeps its line breaks.
    let r = clerk
        .json(
            Method::POST,
            "/api/v1/documents",
            json!({"urgency": "加急", "issuer_mark": "嘉禾县行政审批服务局文件", "title": "关于做好年终工作的通知", "main_recipients": "各乡镇：",
                   "body": "正文。\n\t第二段。", "issuing_authority": "嘉禾县行政审批服务局", "date": "2026-11-30"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn spoofed_file_names_fake_ofds_and_zip_bombs_are_refused() {
    let app = TestApp::demo().await;
    let mut ent = citizen(&app, &crate::approval::credit_code(), "13900000097", "enterprise").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-ZR-001'").await.to_string();
    let r = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    let upload = format!("{page}/materials");
    let mut send =
        async |name: &str, bytes: &[u8]| ent.post_multipart_bytes(&page, &upload, &[("material_index", "0")], ("file", name, bytes)).await;

    let r = send("营业执照\u{202E}fdp.exe", b"%PDF-1.7 x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("材料") && r.body.contains("文字方向"), "{}", r.body);
    let r = send("a\u{0}.pdf", b"%PDF-1.7 x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let docx = zip(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")], None);
    let r = send("公文.ofd", &docx).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("不是有效的 OFD 文件"), "{}", r.body);

    // 200 MB of zeros in a file of about 200 KB.
    let bomb = zip(&[("OFD.xml", b"<ofd:OFD/>"), ("Doc_0/Res/image.bin", &vec![0u8; 200 * 1024 * 1024])], None);
    assert!(bomb.len() < 300 * 1024, "{}", bomb.len());
    let r = send("公文.ofd", &bomb).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("解压后过大"), "{}", r.body);
    // The same bomb declaring small sizes: found out while inflating.
    let liar = zip(&[("OFD.xml", b"<ofd:OFD/>"), ("Doc_0/Res/image.bin", &vec![0u8; 200 * 1024 * 1024])], Some(1024));
    let r = send("公文.ofd", &liar).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("解压后过大"), "{}", r.body);

    let ofd =
        zip(&[("OFD.xml", b"<ofd:OFD xmlns:ofd=\"http://www.ofdspec.org/2016\"/>"), ("Doc_0/Document.xml", b"<ofd:Document/>")], None);
    let r = send("营业执照.ofd", &ofd).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a real OFD package is accepted: {}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM intake_materials").await, 1);
}
