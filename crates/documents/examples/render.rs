//! Renders a sample notice to `sample.pdf` (for looking at the layout).
fn main() {
    let fields = tongban_documents::DocumentFields {
        urgency: "特急".into(),
        issuer_mark: "嘉禾县人民政府文件".into(),
        title: "嘉禾县人民政府关于印发《嘉禾县政务服务事项目录》的通知".into(),
        main_recipients: "各乡镇人民政府，县直各单位：".into(),
        body: "现将《嘉禾县政务服务事项目录》印发给你们，请认真贯彻执行。各单位要按照目录要求，进一步优化办事流程，压缩办理时限，提升服务质量。\n执行中遇到的问题，请及时报县行政审批服务局。".into(),
        attachments_note: "嘉禾县政务服务事项目录".into(),
        issuing_authority: "嘉禾县人民政府".into(),
        date: "2026-11-30".into(),
        cc: "县委办公室，县人大常委会办公室，县政协办公室。".into(),
        printer: "嘉禾县人民政府办公室".into(),
        print_date: "2026-11-30".into(),
        ..Default::default()
    };
    let font = match tongban_documents::render::FontFile::load(None) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let seal = std::fs::read("crates/documents/tests/seal.png").ok();
    match tongban_documents::render::render_pdf(&fields, "嘉政发〔2026〕12号", &font, seal.as_deref()) {
        Ok(pdf) => {
            if let Err(e) = std::fs::write("sample.pdf", pdf) {
                eprintln!("{e}");
            }
        }
        Err(e) => eprintln!("{e}"),
    }
}
