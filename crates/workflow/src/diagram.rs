//! The process diagram as the modeler laid it out (BPMN diagram interchange, `bpmndi`): shape
//! bounds and edge waypoints, for drawing the process as SVG on the definition page. The engine
//! never reads this; a file without layout simply has no diagram.

use roxmltree::Document;
use serde::Serialize;

use crate::{
    definition::{NodeKind, ProcessDefinition},
    parse::TONGBAN_NS,
};

const DI_NS: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
const DC_NS: &str = "http://www.omg.org/spec/DD/20100524/DC";
const DD_DI_NS: &str = "http://www.omg.org/spec/DD/20100524/DI";

/// A drawn element.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    /// Element id.
    pub id: String,
    /// `event`, `end`, `task`, `gateway`, `lane` or `other`.
    pub kind: &'static str,
    /// Gateway marker: `+` parallel, `×` exclusive, `○` inclusive.
    pub marker: &'static str,
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// The element's name.
    pub label: String,
}

/// A drawn flow: its waypoints as an SVG `points` list.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// `x,y x,y …`.
    pub points: String,
}

/// The laid-out diagram, shifted so that it starts near (0, 0).
#[derive(Debug, Clone, Serialize)]
pub struct Diagram {
    /// Shapes.
    pub shapes: Vec<Shape>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Total width.
    pub width: f64,
    /// Total height.
    pub height: f64,
}

fn num(n: &roxmltree::Node, name: &str) -> Option<f64> {
    n.attribute(name)?.parse::<f64>().ok().filter(|v| v.is_finite() && v.abs() < 1e6)
}

/// Reads the layout of `def` from its XML; `None` when the file has none.
pub fn diagram(xml: &str, def: &ProcessDefinition) -> Option<Diagram> {
    let doc = Document::parse_with_options(xml, roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 200_000 }).ok()?;
    let mut shapes = Vec::new();
    let mut edges = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element() && n.tag_name().namespace() == Some(DI_NS)) {
        let element = n.attribute("bpmnElement").unwrap_or("");
        match n.tag_name().name() {
            "BPMNShape" => {
                let Some(b) =
                    n.children().find(|c| c.is_element() && c.tag_name().namespace() == Some(DC_NS) && c.tag_name().name() == "Bounds")
                else {
                    continue;
                };
                let (Some(x), Some(y), Some(w), Some(h)) = (num(&b, "x"), num(&b, "y"), num(&b, "width"), num(&b, "height")) else {
                    continue;
                };
                let (kind, marker, label) = match def.node_by_id(element).map(|i| &def.nodes[i]) {
                    Some(node) => {
                        let (k, m) = match node.kind {
                            NodeKind::Start | NodeKind::BoundaryTimer { .. } => ("event", ""),
                            NodeKind::End => ("end", ""),
                            NodeKind::UserTask(_) => ("task", ""),
                            NodeKind::Parallel => ("gateway", "+"),
                            NodeKind::Exclusive { .. } => ("gateway", "×"),
                            NodeKind::Inclusive { .. } => ("gateway", "○"),
                        };
                        (k, m, node.name.clone())
                    }
                    None => {
                        let name = doc
                            .descendants()
                            .find(|d| d.attribute("id") == Some(element))
                            .map(|d| d.attribute("name").or_else(|| d.attribute((TONGBAN_NS, "unit"))).unwrap_or("").to_string())
                            .unwrap_or_default();
                        ("lane", "", name)
                    }
                };
                shapes.push(Shape { id: element.to_string(), kind, marker, x, y, w, h, label });
            }
            "BPMNEdge" => {
                let pts: Vec<(f64, f64)> = n
                    .children()
                    .filter(|c| c.is_element() && c.tag_name().namespace() == Some(DD_DI_NS) && c.tag_name().name() == "waypoint")
                    .filter_map(|w| Some((num(&w, "x")?, num(&w, "y")?)))
                    .collect();
                if pts.len() >= 2 {
                    edges.push(pts);
                }
            }
            _ => {}
        }
    }
    if shapes.is_empty() {
        return None;
    }
    let min_x = shapes.iter().map(|s| s.x).chain(edges.iter().flatten().map(|p| p.0)).fold(f64::MAX, f64::min) - 10.0;
    let min_y = shapes.iter().map(|s| s.y).chain(edges.iter().flatten().map(|p| p.1)).fold(f64::MAX, f64::min) - 10.0;
    let max_x = shapes.iter().map(|s| s.x + s.w).chain(edges.iter().flatten().map(|p| p.0)).fold(f64::MIN, f64::max) + 10.0;
    let max_y = shapes.iter().map(|s| s.y + s.h).chain(edges.iter().flatten().map(|p| p.1)).fold(f64::MIN, f64::max) + 30.0;
    for s in shapes.iter_mut() {
        s.x -= min_x;
        s.y -= min_y;
    }
    // Lanes first, so that tasks are drawn over them.
    shapes.sort_by_key(|s| s.kind != "lane");
    let edges = edges
        .into_iter()
        .map(|pts| Edge { points: pts.iter().map(|(x, y)| format!("{:.0},{:.0}", x - min_x, y - min_y)).collect::<Vec<_>>().join(" ") })
        .collect();
    Some(Diagram { shapes, edges, width: max_x - min_x, height: max_y - min_y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_tests::{CAMUNDA, PARALLEL};

    #[test]
    fn reads_the_modelers_layout() {
        let def = crate::parse_bpmn(PARALLEL).unwrap();
        let d = diagram(PARALLEL, &def).unwrap();
        assert_eq!(d.shapes.len(), 10);
        assert_eq!(d.edges.len(), 11);
        assert!(d.shapes.iter().any(|s| s.id == "Fork_1" && s.marker == "+"));
        let def = crate::parse_bpmn(CAMUNDA).unwrap();
        let d = diagram(CAMUNDA, &def).unwrap();
        assert!(d.shapes.iter().any(|s| s.kind == "lane" && s.label == "自然资源局"));
        assert!(d.width > 0.0 && d.height > 0.0);
    }
}
