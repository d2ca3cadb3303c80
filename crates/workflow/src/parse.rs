//! Reading BPMN 2.0 XML as the bpmn.io modeler and Camunda Modeler write it. Diagram interchange
//! (`bpmndi`) and other vendors' extensions are ignored; BPMN elements outside the supported subset
//! are refused with the element's id and line.

use std::collections::{BTreeMap, HashMap};

use roxmltree::{Document, Node as XmlNode};

use crate::{
    definition::{Candidate, FieldType, Flow, MultiInstance, Node, NodeKind, ProcessDefinition, UserTaskSpec},
    error::{DefinitionError, DefinitionErrorKind as K},
    expr::Expr,
    validate,
};

/// The BPMN 2.0 model namespace.
pub const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
/// Camunda 7 extension namespace (camunda:candidateGroups, camunda:formData…).
pub const CAMUNDA_NS: &str = "http://camunda.org/schema/1.0/bpmn";
/// tongban's extension namespace (tongban:candidateUnit, tongban:dueWorkingDays…).
pub const TONGBAN_NS: &str = "http://tongban.org/schema/bpmn/1.0";

/// The largest file accepted, in bytes.
pub const MAX_BPMN_BYTES: usize = 2 * 1024 * 1024;
/// The most flow elements in one process.
pub const MAX_ELEMENTS: usize = 2000;
/// The deepest nesting of elements accepted (嵌套层数). Files from the modelers nest fewer than
/// a dozen deep; the limit is checked on the raw text before any tree is built, so a file nested
/// thousands deep is refused instead of exhausting a worker's stack.
pub const MAX_DEPTH: usize = 64;

struct Raw {
    nodes: Vec<Node>,
    ids: HashMap<String, usize>,
    flows_pending: Vec<PendingFlow>,
    boundaries: Vec<PendingBoundary>,
    lanes: HashMap<String, String>,
    fields: BTreeMap<String, FieldType>,
    defaults: Vec<(usize, String, u32)>,
}

struct PendingFlow {
    id: String,
    name: String,
    line: u32,
    source: String,
    target: String,
    condition: Option<(String, u32)>,
}

struct PendingBoundary {
    node: usize,
    attached_to: String,
}

fn line_of(doc: &Document, n: XmlNode) -> u32 {
    doc.text_pos_at(n.range().start).row
}

fn err(element: &str, line: u32, kind: K) -> DefinitionError {
    DefinitionError { element: element.to_string(), line, kind }
}

fn is_bpmn(n: &XmlNode, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(BPMN_NS) && n.tag_name().name() == name
}

fn bpmn_children<'a, 'i>(n: XmlNode<'a, 'i>) -> impl Iterator<Item = XmlNode<'a, 'i>> {
    n.children().filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN_NS))
}

fn ext_attr<'a>(n: &XmlNode<'a, '_>, local: &str) -> Option<&'a str> {
    n.attribute((TONGBAN_NS, local)).or_else(|| n.attribute((CAMUNDA_NS, local)))
}

fn candidate(value: &str) -> Candidate {
    let v = value.trim();
    match v.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
        Some(var) => Candidate::Variable(var.trim().to_string()),
        None => Candidate::Literal(v.to_string()),
    }
}

fn candidates(value: Option<&str>) -> Vec<Candidate> {
    value.map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(candidate).collect()).unwrap_or_default()
}

fn variable_name(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix("${").and_then(|s| s.strip_suffix('}')).map(str::trim).unwrap_or(v)
}

/// Reads `multiInstanceLoopCharacteristics` (parallel only; every instance must complete).
fn read_multi_instance(doc: &Document, task: XmlNode, id: &str) -> Result<Option<MultiInstance>, DefinitionError> {
    let Some(mi) = bpmn_children(task).find(|c| c.tag_name().name() == "multiInstanceLoopCharacteristics") else { return Ok(None) };
    let line = line_of(doc, mi);
    if mi.attribute("isSequential") == Some("true") {
        return Err(err(id, line, K::Unsupported("multiInstanceLoopCharacteristics isSequential=true".into())));
    }
    if let Some(c) = bpmn_children(mi).find(|c| matches!(c.tag_name().name(), "loopCardinality" | "completionCondition")) {
        return Err(err(id, line_of(doc, c), K::Unsupported(c.tag_name().name().to_string())));
    }
    let name_ok = |v: &str| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let collection = ext_attr(&mi, "collection").map(variable_name).filter(|v| name_ok(v));
    let element = ext_attr(&mi, "elementVariable").map(str::trim).filter(|v| name_ok(v));
    match (collection, element) {
        (Some(c), Some(e)) => Ok(Some(MultiInstance { collection: c.to_string(), element_variable: e.to_string() })),
        (None, _) => Err(err(id, line, K::BadAttribute("collection".into()))),
        (_, None) => Err(err(id, line, K::BadAttribute("elementVariable".into()))),
    }
}

/// Parses and validates a BPMN file.
pub fn parse_bpmn(xml: &str) -> Result<ProcessDefinition, DefinitionError> {
    if xml.len() > MAX_BPMN_BYTES {
        return Err(err("-", 1, K::TooLarge));
    }
    check_depth(xml)?;
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 200_000 };
    let doc = Document::parse_with_options(xml, opts).map_err(|e| err("-", e.pos().row, K::MalformedXml(e.to_string())))?;
    let root = doc.root_element();
    if !is_bpmn(&root, "definitions") {
        return Err(err(root.tag_name().name(), line_of(&doc, root), K::NotBpmn));
    }
    let mut process = None;
    for child in bpmn_children(root) {
        match child.tag_name().name() {
            "process" => {
                if process.is_some() {
                    return Err(err(child.attribute("id").unwrap_or("-"), line_of(&doc, child), K::SeveralProcesses));
                }
                process = Some(child);
            }
            "collaboration" => check_collaboration(&doc, child)?,
            "documentation" | "extensionElements" => {}
            other => return Err(err(child.attribute("id").unwrap_or(other), line_of(&doc, child), K::Unsupported(other.to_string()))),
        }
    }
    let Some(process) = process else { return Err(err("definitions", line_of(&doc, root), K::NoProcess)) };
    let key = process.attribute("id").ok_or_else(|| err("process", line_of(&doc, process), K::MissingId))?.to_string();
    if !valid_key(&key) {
        return Err(err(&key, line_of(&doc, process), K::BadAttribute("id".into())));
    }
    let name = process.attribute("name").unwrap_or(&key).to_string();
    let mut raw = Raw {
        nodes: Vec::new(),
        ids: HashMap::new(),
        flows_pending: Vec::new(),
        boundaries: Vec::new(),
        lanes: HashMap::new(),
        fields: BTreeMap::new(),
        defaults: Vec::new(),
    };
    read_fields(&doc, process, &mut raw)?;
    for child in bpmn_children(process) {
        read_element(&doc, child, &mut raw)?;
    }
    if raw.nodes.len() + raw.flows_pending.len() > MAX_ELEMENTS {
        return Err(err(&key, line_of(&doc, process), K::TooLarge));
    }
    let mut def = assemble(key, name, raw)?;
    validate::validate(&mut def)?;
    Ok(def)
}

/// Refuses elements nested deeper than [`MAX_DEPTH`], naming the first element too deep and its
/// line. A linear scan without recursion or allocation per element: comments, CDATA sections and
/// processing instructions are skipped, quoted attribute values may hold `>` and `/`, and empty
/// elements (`<a/>`) do not nest. Anything malformed is left to the XML parser to report.
pub fn check_depth(xml: &str) -> Result<(), DefinitionError> {
    let b = xml.as_bytes();
    let (mut i, mut depth, mut line) = (0usize, 0usize, 1u32);
    // Moves past `end` (counting lines on the way); the end of the text when it never comes.
    let skip_past = |from: usize, end: &[u8], line: &mut u32| -> usize {
        let mut j = from;
        while j < b.len() {
            if b[j..].starts_with(end) {
                return j + end.len();
            }
            if b[j] == b'\n' {
                *line += 1;
            }
            j += 1;
        }
        b.len()
    };
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'<' => {
                let rest = &b[i..];
                if rest.starts_with(b"<!--") {
                    i = skip_past(i + 4, b"-->", &mut line);
                } else if rest.starts_with(b"<![CDATA[") {
                    i = skip_past(i + 9, b"]]>", &mut line);
                } else if rest.starts_with(b"<?") {
                    i = skip_past(i + 2, b"?>", &mut line);
                } else if rest.starts_with(b"<!") {
                    // A document type declaration: the parser refuses it (no DTDs), before any element.
                    return Ok(());
                } else {
                    let closing = rest.starts_with(b"</");
                    let tag_line = line;
                    let name_start = if closing { i + 2 } else { i + 1 };
                    let mut j = name_start;
                    while j < b.len() && !matches!(b[j], b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') {
                        j += 1;
                    }
                    let name_end = j;
                    let mut quote: Option<u8> = None;
                    let mut last = 0u8;
                    while j < b.len() {
                        let c = b[j];
                        if c == b'\n' {
                            line += 1;
                        }
                        match quote {
                            Some(q) if c == q => quote = None,
                            Some(_) => {}
                            None if c == b'"' || c == b'\'' => quote = Some(c),
                            None if c == b'>' => break,
                            None if !c.is_ascii_whitespace() => last = c,
                            None => {}
                        }
                        j += 1;
                    }
                    if closing {
                        depth = depth.saturating_sub(1);
                    } else if last != b'/' {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            let name: String = String::from_utf8_lossy(&b[name_start..name_end]).chars().take(64).collect();
                            return Err(err(&name, tag_line, K::TooDeep));
                        }
                    }
                    i = j + 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn check_collaboration(doc: &Document, c: XmlNode) -> Result<(), DefinitionError> {
    for child in bpmn_children(c) {
        let name = child.tag_name().name();
        if !matches!(name, "participant" | "documentation" | "extensionElements" | "textAnnotation" | "association") {
            return Err(err(child.attribute("id").unwrap_or(name), line_of(doc, child), K::Unsupported(name.to_string())));
        }
    }
    Ok(())
}

fn read_fields(doc: &Document, el: XmlNode, raw: &mut Raw) -> Result<(), DefinitionError> {
    for d in el.descendants().filter(|d| d.is_element()) {
        let ns = d.tag_name().namespace();
        let local = d.tag_name().name();
        let (name_attr, is_field) = match (ns, local) {
            (Some(CAMUNDA_NS), "formField") => ("id", true),
            (Some(TONGBAN_NS), "field") => ("name", true),
            _ => ("", false),
        };
        if !is_field {
            continue;
        }
        let line = line_of(doc, d);
        let Some(name) = d.attribute(name_attr).filter(|n| !n.trim().is_empty()) else {
            return Err(err(local, line, K::MissingId));
        };
        let ty = d.attribute("type").unwrap_or("string");
        let Some(ty) = FieldType::parse(ty) else { return Err(err(name, line, K::BadAttribute(format!("type={ty}")))) };
        raw.fields.insert(name.trim().to_string(), ty);
    }
    Ok(())
}

fn add_node(doc: &Document, el: XmlNode, raw: &mut Raw, kind: NodeKind) -> Result<usize, DefinitionError> {
    let line = line_of(doc, el);
    let id = el.attribute("id").ok_or_else(|| err(el.tag_name().name(), line, K::MissingId))?.to_string();
    if raw.ids.contains_key(&id) {
        return Err(err(&id, line, K::DuplicateId));
    }
    let name = el.attribute("name").unwrap_or("").trim().to_string();
    let ix = raw.nodes.len();
    raw.ids.insert(id.clone(), ix);
    raw.nodes.push(Node { id, name, line, kind, incoming: Vec::new(), outgoing: Vec::new() });
    if let Some(default) = el.attribute("default") {
        raw.defaults.push((ix, default.to_string(), line));
    }
    Ok(ix)
}

/// Event definitions inside an event; only the listed ones are allowed.
fn event_definitions<'a, 'i>(el: XmlNode<'a, 'i>) -> Vec<XmlNode<'a, 'i>> {
    bpmn_children(el).filter(|c| c.tag_name().name().ends_with("EventDefinition")).collect()
}

fn read_element(doc: &Document, el: XmlNode, raw: &mut Raw) -> Result<(), DefinitionError> {
    let local = el.tag_name().name();
    let line = line_of(doc, el);
    let id = el.attribute("id").unwrap_or(local).to_string();
    match local {
        "startEvent" | "endEvent" => {
            if let Some(d) = event_definitions(el).first() {
                return Err(err(&id, line_of(doc, *d), K::Unsupported(d.tag_name().name().to_string())));
            }
            let kind = if local == "startEvent" { NodeKind::Start } else { NodeKind::End };
            add_node(doc, el, raw, kind)?;
        }
        "userTask" => {
            let due = match ext_attr(&el, "dueWorkingDays") {
                Some(v) => Some(
                    v.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|d| *d <= 3650)
                        .ok_or_else(|| err(&id, line, K::BadAttribute(format!("dueWorkingDays={v}"))))?,
                ),
                None => None,
            };
            let mut roles = candidates(el.attribute((TONGBAN_NS, "candidateRole")));
            roles.extend(candidates(el.attribute((CAMUNDA_NS, "candidateGroups"))));
            let assignee = el.attribute((TONGBAN_NS, "assignee")).or_else(|| el.attribute((CAMUNDA_NS, "assignee"))).map(candidate);
            let spec = UserTaskSpec {
                candidate_units: candidates(el.attribute((TONGBAN_NS, "candidateUnit"))),
                candidate_roles: roles,
                assignee,
                due_working_days: due,
                boundary_timers: Vec::new(),
                multi_instance: read_multi_instance(doc, el, &id)?,
            };
            add_node(doc, el, raw, NodeKind::UserTask(spec))?;
        }
        "parallelGateway" => {
            add_node(doc, el, raw, NodeKind::Parallel)?;
        }
        "exclusiveGateway" => {
            add_node(doc, el, raw, NodeKind::Exclusive { default: None })?;
        }
        "inclusiveGateway" => {
            add_node(doc, el, raw, NodeKind::Inclusive { default: None })?;
        }
        "boundaryEvent" => read_boundary(doc, el, raw)?,
        "sequenceFlow" => {
            let source = el.attribute("sourceRef").ok_or_else(|| err(&id, line, K::BadAttribute("sourceRef".into())))?;
            let target = el.attribute("targetRef").ok_or_else(|| err(&id, line, K::BadAttribute("targetRef".into())))?;
            let condition = bpmn_children(el)
                .find(|c| c.tag_name().name() == "conditionExpression")
                .map(|c| (c.text().unwrap_or("").to_string(), line_of(doc, c)));
            if el.attribute("id").is_none() {
                return Err(err("sequenceFlow", line, K::MissingId));
            }
            raw.flows_pending.push(PendingFlow {
                id: id.clone(),
                name: el.attribute("name").unwrap_or("").to_string(),
                line,
                source: source.to_string(),
                target: target.to_string(),
                condition,
            });
        }
        "laneSet" => read_lanes(el, raw),
        "documentation" | "extensionElements" | "textAnnotation" | "association" => {}
        other => return Err(err(&id, line, K::Unsupported(other.to_string()))),
    }
    Ok(())
}

fn read_boundary(doc: &Document, el: XmlNode, raw: &mut Raw) -> Result<(), DefinitionError> {
    let line = line_of(doc, el);
    let id = el.attribute("id").unwrap_or("boundaryEvent").to_string();
    let defs = event_definitions(el);
    let timer = match defs.as_slice() {
        [t] if t.tag_name().name() == "timerEventDefinition" => *t,
        [other, ..] => return Err(err(&id, line_of(doc, *other), K::Unsupported(other.tag_name().name().to_string()))),
        [] => return Err(err(&id, line, K::Unsupported("boundaryEvent".into()))),
    };
    let days = match ext_attr(&el, "workingDays") {
        Some(v) => v.trim().parse::<u32>().ok(),
        None => {
            let Some(duration) = bpmn_children(timer).find(|c| c.tag_name().name() == "timeDuration") else {
                let what = bpmn_children(timer).next().map(|c| c.tag_name().name().to_string()).unwrap_or_else(|| "timer".into());
                return Err(err(&id, line_of(doc, timer), K::BadTimer(what)));
            };
            working_days_of(duration.text().unwrap_or(""))
        }
    };
    let Some(days) = days.filter(|d| (1..=3650).contains(d)) else {
        return Err(err(&id, line_of(doc, timer), K::BadTimer("duration".into())));
    };
    let attached = el.attribute("attachedToRef").ok_or_else(|| err(&id, line, K::BadAttribute("attachedToRef".into())))?;
    let cancel = el.attribute("cancelActivity").map(|v| v != "false").unwrap_or(true);
    let node = add_node(doc, el, raw, NodeKind::BoundaryTimer { attached_to: usize::MAX, working_days: days, cancel_activity: cancel })?;
    raw.boundaries.push(PendingBoundary { node, attached_to: attached.to_string() });
    Ok(())
}

/// `P5D` (or `5`) means five working days; hours and months are refused.
fn working_days_of(text: &str) -> Option<u32> {
    let t = text.trim();
    let n = t.strip_prefix('P').and_then(|r| r.strip_suffix('D')).unwrap_or(t);
    n.parse::<u32>().ok()
}

fn read_lanes(set: XmlNode, raw: &mut Raw) {
    for lane in bpmn_children(set).filter(|c| c.tag_name().name() == "lane") {
        let unit = lane.attribute((TONGBAN_NS, "unit")).or(lane.attribute("name")).unwrap_or("").trim().to_string();
        for r in bpmn_children(lane).filter(|c| c.tag_name().name() == "flowNodeRef") {
            if let Some(t) = r.text()
                && !unit.is_empty()
            {
                raw.lanes.insert(t.trim().to_string(), unit.clone());
            }
        }
        if let Some(child) = bpmn_children(lane).find(|c| c.tag_name().name() == "childLaneSet") {
            read_lanes(child, raw);
        }
    }
}

fn assemble(key: String, name: String, mut raw: Raw) -> Result<ProcessDefinition, DefinitionError> {
    let mut flows = Vec::new();
    let mut flow_ids = HashMap::new();
    for p in &raw.flows_pending {
        if raw.ids.contains_key(&p.id) || flow_ids.contains_key(&p.id) {
            return Err(err(&p.id, p.line, K::DuplicateId));
        }
        let source = *raw.ids.get(&p.source).ok_or_else(|| err(&p.id, p.line, K::UnknownReference(p.source.clone())))?;
        let target = *raw.ids.get(&p.target).ok_or_else(|| err(&p.id, p.line, K::UnknownReference(p.target.clone())))?;
        let condition = match &p.condition {
            Some((text, line)) if !text.trim().is_empty() => {
                Some(Expr::parse(text).map_err(|e| err(&p.id, *line, K::BadCondition(e.to_string())))?)
            }
            _ => None,
        };
        let ix = flows.len();
        flow_ids.insert(p.id.clone(), ix);
        raw.nodes[source].outgoing.push(ix);
        raw.nodes[target].incoming.push(ix);
        flows.push(Flow { id: p.id.clone(), name: p.name.clone(), line: p.line, source, target, condition });
    }
    for (node, flow_id, line) in &raw.defaults {
        let Some(&f) = flow_ids.get(flow_id) else {
            return Err(err(&raw.nodes[*node].id, *line, K::UnknownReference(flow_id.clone())));
        };
        match &mut raw.nodes[*node].kind {
            NodeKind::Exclusive { default } | NodeKind::Inclusive { default } => *default = Some(f),
            _ => {}
        }
    }
    for b in &raw.boundaries {
        let (id, line) = (raw.nodes[b.node].id.clone(), raw.nodes[b.node].line);
        let Some(&task) = raw.ids.get(&b.attached_to) else { return Err(err(&id, line, K::UnknownReference(b.attached_to.clone()))) };
        match &mut raw.nodes[task].kind {
            NodeKind::UserTask(spec) => spec.boundary_timers.push(b.node),
            _ => return Err(err(&id, line, K::BadAttribute("attachedToRef".into()))),
        }
        if let NodeKind::BoundaryTimer { attached_to, .. } = &mut raw.nodes[b.node].kind {
            *attached_to = task;
        }
    }
    for node in raw.nodes.iter_mut() {
        if let (NodeKind::UserTask(spec), Some(unit)) = (&mut node.kind, raw.lanes.get(&node.id))
            && spec.candidate_units.is_empty()
            && spec.assignee.is_none()
        {
            spec.candidate_units.push(candidate(unit));
        }
    }
    let starts: Vec<usize> = raw.nodes.iter().enumerate().filter(|(_, n)| n.kind == NodeKind::Start).map(|(i, _)| i).collect();
    let start = match starts.as_slice() {
        [s] => *s,
        [] => return Err(err(&key, 1, K::NoStartEvent)),
        [_, second, ..] => return Err(err(&raw.nodes[*second].id, raw.nodes[*second].line, K::SeveralStartEvents)),
    };
    let n = raw.nodes.len();
    Ok(ProcessDefinition { key, name, nodes: raw.nodes, flows, start, fields: raw.fields, blocks: Vec::new(), paths: vec![Vec::new(); n] })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HEAD: &str = r#"<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:tongban="http://tongban.org/schema/bpmn/1.0">
<bpmn:process id="p">"#;
    const BODY: &str = r#"<bpmn:startEvent id="s"/><bpmn:userTask id="t" tongban:candidateUnit="u"/><bpmn:endEvent id="e"/>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>"#;

    /// A valid process whose extension elements hold `extra` levels of nested elements.
    fn nested(extra: usize, name: &str) -> String {
        let open: String = (0..extra).map(|_| format!("<tongban:{name} note=\"a > b / c\">")).collect();
        let close: String = (0..extra).map(|_| format!("</tongban:{name}>")).collect();
        format!(
            "{HEAD}<bpmn:extensionElements>\n{open}<!-- <x> --><![CDATA[<y>]]><tongban:empty/>{close}</bpmn:extensionElements>{BODY}</bpmn:process></bpmn:definitions>"
        )
    }

    #[test]
    fn deep_nesting_is_refused_with_the_element_and_line() {
        // definitions, process and extensionElements are three levels.
        assert!(parse_bpmn(&nested(MAX_DEPTH - 3, "x")).is_ok());
        let e = parse_bpmn(&nested(MAX_DEPTH - 2, "x")).unwrap_err();
        assert_eq!(e.message_key(), "workflow.error.too_deep");
        assert_eq!((e.kind, e.element.as_str(), e.line), (K::TooDeep, "tongban:x", 4));
    }

    #[test]
    fn the_attack_file_is_refused_on_a_small_stack() {
        // 4,000 levels in about 28 KB, as in the attack; a 64 KiB stack proves nothing recurses.
        let xml = format!("{HEAD}{}{}</bpmn:process></bpmn:definitions>", "<a>".repeat(4000), "</a>".repeat(4000));
        let deeper = format!("{HEAD}{}", "<bpmn:x>\n".repeat(200_000));
        let run = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                (parse_bpmn(&xml).map(|_| ()).map_err(|e| e.kind), parse_bpmn(&deeper).map(|_| ()).map_err(|e| (e.kind, e.line)))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(run.0, Err(K::TooDeep));
        assert_eq!(run.1, Err((K::TooDeep, 65)), "the 65th level, on line 65");
    }

    proptest! {
        #[test]
        fn random_nesting_never_panics_and_deep_nesting_gets_the_depth_error(depth in 0usize..300, name in "[a-z]{1,8}") {
            match parse_bpmn(&nested(depth, &name)) {
                Ok(_) => prop_assert!(depth + 3 <= MAX_DEPTH),
                Err(e) => {
                    prop_assert!(depth + 3 > MAX_DEPTH, "refused at depth {depth}: {e}");
                    prop_assert_eq!(e.kind, K::TooDeep);
                }
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_bpmn(&text);
            let _ = check_depth(&text);
        }

        #[test]
        fn random_tags_never_panic(parts in proptest::collection::vec(prop_oneof![
            Just("<a>"), Just("</a>"), Just("<b/>"), Just("<!--"), Just("-->"), Just("<![CDATA["), Just("]]>"),
            Just("<?x"), Just("?>"), Just("\""), Just("'"), Just(">"), Just("\n"), Just("<bpmn:process id=\"p\">"),
        ], 0..400)) {
            let _ = parse_bpmn(&format!("{HEAD}{}", parts.concat()));
        }
    }
}
