//! The report's picture: per Auto Scaling group, one bar per instance from the first to the last poll
//! that saw it, coloured by its target health at each poll, with vertical markers for the refresh
//! start, each checkpoint reached, and the rollback (with its reason). Inline SVG, no scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;


use super::{esc, on_clock, ReportInput};
use crate::core::rollout::PhaseName;
use crate::summary::Summary;
use crate::events::{Event, FleetInstance, Stage};

const WIDTH: f64 = 1100.0;
const LABEL: f64 = 350.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 20.0;
const TOP: f64 = 64.0;

/// State classes, their colour and legend text. Order = legend order.
const CLASSES: &[(&str, &str, &str)] = &[
    ("healthy", "#2da44e", "healthy in every target group"),
    ("initial", "#54aeff", "initial / not yet registered everywhere"),
    ("unhealthy", "#cf222e", "unhealthy in a target group"),
    ("draining", "#d4a72c", "draining (leaving)"),
    ("terminating", "#8c959f", "terminating"),
    ("hook", "#8250df", "waiting on a launch lifecycle hook (Pending:Wait)"),
    ("pending", "#d0d7de", "launching, not registered"),
];

struct Sample {
    t: u64,
    class: &'static str,
    text: String,
}

struct Row {
    id: String,
    image: Option<String>,
    samples: Vec<Sample>,
    gone_at: Option<u64>,
}

struct Mark {
    t: u64,
    kind: &'static str,
    label: String,
    detail: String,
}

#[derive(Default)]
struct Lane {
    rows: Vec<Row>,
    polls: Vec<u64>,
    marks: Vec<Mark>,
    first: Option<u64>,
}

fn class_of(i: &FleetInstance) -> &'static str {
    let any = |s: &str| i.health.values().any(|v| v == s);
    if any("unhealthy") {
        "unhealthy"
    } else if i.lifecycle.starts_with("Terminat") {
        "terminating"
    } else if any("draining") {
        "draining"
    } else if i.lifecycle.ends_with("Pending:Wait") {
        "hook"
    } else if i.health.is_empty() {
        "pending"
    } else if i.health.values().all(|v| v == "healthy") {
        "healthy"
    } else {
        "initial"
    }
}

fn lanes(input: &ReportInput) -> BTreeMap<String, Lane> {
    let mut lanes: BTreeMap<String, Lane> = BTreeMap::new();
    // Only groups whose refresh was watched get a lane; other scopes (the bake) are in the log.
    for (_, e) in &input.events {
        if let Event::Fleet { scope, .. } = e {
            lanes.entry(scope.clone()).or_default();
        }
    }
    let mut reached: BTreeMap<(String, i32), ()> = BTreeMap::new();
    for (t, e) in &input.events {
        let t = *t;
        match e {
            Event::Fleet { scope, instances, .. } => {
                let lane = lanes.get_mut(scope).expect("lane exists");
                lane.polls.push(t);
                for i in instances {
                    let pos = lane.rows.iter().position(|r| r.id == i.id).unwrap_or_else(|| {
                        lane.rows.push(Row { id: i.id.clone(), image: None, samples: vec![], gone_at: None });
                        lane.rows.len() - 1
                    });
                    let row = &mut lane.rows[pos];
                    if i.image.is_some() {
                        row.image = i.image.clone();
                    }
                    let health: Vec<String> = i.health.iter().map(|(tg, s)| format!("{s} in {tg}")).collect();
                    let text = format!("{} ({}): {}", i.id, i.lifecycle, if health.is_empty() { "not registered".into() } else { health.join(", ") });
                    row.samples.push(Sample { t, class: class_of(i), text });
                }
            }
            Event::Phase { scope, phase, detail } if lanes.contains_key(scope) => {
                let lane = lanes.get_mut(scope).expect("lane exists");
                lane.first.get_or_insert(t);
                let kind = match phase {
                    Stage::Refresh => "refresh",
                    Stage::Rollback | Stage::Undo => "rollback",
                    _ => continue,
                };
                // The first rollback decision is the moment that matters; later ones are follow-up actions.
                if kind == "rollback" && lane.marks.iter().any(|m| m.kind == "rollback") {
                    continue;
                }
                let label = if kind == "rollback" { "rollback".to_string() } else { "refresh started".to_string() };
                lane.marks.push(Mark { t, kind, label, detail: detail.clone() });
            }
            // Only the forward refresh pauses at checkpoints; a rollback's percentage is its own progress.
            Event::Progress { scope, phase: PhaseName::Refreshing, percent: Some(p), .. } if lanes.contains_key(scope) => {
                for cp in input.checkpoints.get(scope).into_iter().flatten().filter(|cp| **cp < 100) {
                    if *p >= *cp && reached.insert((scope.clone(), *cp), ()).is_none() {
                        let lane = lanes.get_mut(scope).expect("lane exists");
                        lane.marks.push(Mark { t, kind: "checkpoint", label: format!("checkpoint {cp}%"), detail: format!("refresh reached {p}%") });
                    }
                }
            }
            _ => {}
        }
    }
    for lane in lanes.values_mut() {
        for row in &mut lane.rows {
            let last = row.samples.last().map(|s| s.t).unwrap_or(0);
            // Missing from a later poll: the group no longer lists it (terminated).
            row.gone_at = lane.polls.iter().copied().find(|p| *p > last);
        }
        if lane.first.is_none() {
            lane.first = lane.polls.first().copied();
        }
    }
    lanes
}

fn nice_step(span_s: f64) -> f64 {
    [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0]
        .into_iter()
        .find(|s| span_s / s <= 10.0)
        .unwrap_or(7200.0)
}

fn fmt_secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.0}s")
    }
}

/// Which release an image is, for one group (from the summary's deploy report).
fn release_of(summary: &Summary, group: &str, image: Option<&str>) -> &'static str {
    let g = summary.deploy.iter().flat_map(|d| &d.groups).find(|g| g.group == group);
    match (g, image) {
        (Some(g), Some(img)) if g.new_image == img => "new",
        (Some(g), Some(img)) if g.old_image == img => "old",
        _ => "",
    }
}

pub fn render(input: &ReportInput) -> String {
    let lanes = lanes(input);
    let mut out = String::from("<h2>Timeline</h2>\n");
    if lanes.is_empty() {
        out.push_str("<p id=\"timeline-empty\">No instance refresh was watched in this run.</p>\n");
        return out;
    }
    let t0 = lanes.values().filter_map(|l| l.first).min().unwrap_or(0);
    let t1 = input.events.last().map(|(t, _)| *t).unwrap_or(t0).max(t0 + 1000);
    let span = (t1 - t0) as f64 / 1000.0;
    let plot = WIDTH - LABEL - RIGHT;
    let x = |t: u64| LABEL + (t.saturating_sub(t0) as f64 / 1000.0) / span * plot;
    let rows: usize = lanes.values().map(|l| l.rows.len() + 2).sum();
    let height = TOP + rows as f64 * ROW + 30.0;
    let _ = writeln!(
        out,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-size=\"12\">"
    );
    // Legend.
    let mut lx = 10.0;
    for (class, colour, text) in CLASSES {
        let _ = write!(
            out,
            "<g class=\"legend\"><rect x=\"{lx}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"16\">{class}</text><title>{text}</title></g>",
            lx + 16.0
        );
        lx += 20.0 + 8.0 * class.len() as f64 + 14.0;
    }
    let _ = write!(out, "<line x1=\"{lx}\" y1=\"6\" x2=\"{lx}\" y2=\"18\" stroke=\"#6e40c9\" stroke-dasharray=\"3,2\"/><text x=\"{}\" y=\"16\">checkpoint</text>", lx + 6.0);
    lx += 96.0;
    let _ = write!(out, "<line x1=\"{lx}\" y1=\"6\" x2=\"{lx}\" y2=\"18\" stroke=\"#cf222e\" stroke-width=\"3\"/><text x=\"{}\" y=\"16\">rollback</text>", lx + 6.0);
    // Time axis: the picture spans the watched refreshes, its labels read on the report's one clock
    // (seconds since bakeroll started), so they match the log and the evidence below.
    let step = nice_step(span);
    let offset = on_clock(input, t0);
    let mut s = (offset / step).ceil() * step - offset;
    while s <= span + 1e-9 {
        let tx = LABEL + s / span * plot;
        let _ = write!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#eaeef2\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#57606a\">+{}</text>",
            TOP - 14.0,
            height - 24.0,
            height - 10.0,
            fmt_secs(offset + s)
        );
        s += step;
    }
    let mut y = TOP;
    for (name, lane) in &lanes {
        let _ = write!(out, "<g class=\"lane\" data-group=\"{}\">", esc(name));
        let _ = write!(out, "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"13\">group {}</text>", y + 14.0, esc(name));
        let lane_top = y;
        y += ROW * 1.5;
        for row in &lane.rows {
            let release = release_of(&input.summary, name, row.image.as_deref());
            let weight = if release == "new" { " font-weight=\"bold\"" } else { "" };
            let _ = write!(
                out,
                "<g class=\"instance\" data-instance=\"{id}\" data-release=\"{release}\"><text x=\"10\" y=\"{:.1}\"{weight}>{id} {} {release}</text>",
                y + 14.0,
                esc(row.image.as_deref().unwrap_or("?")),
                id = esc(&row.id),
            );
            for (i, smp) in row.samples.iter().enumerate() {
                let end = row.samples.get(i + 1).map(|n| n.t).or(row.gone_at).unwrap_or(t1);
                let colour = CLASSES.iter().find(|c| c.0 == smp.class).map(|c| c.1).unwrap_or("#000");
                let _ = write!(
                    out,
                    "<rect class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\"><title>+{:.1}s {}</title></rect>",
                    smp.class,
                    x(smp.t),
                    y + 3.0,
                    (x(end) - x(smp.t)).max(1.0),
                    ROW - 6.0,
                    on_clock(input, smp.t),
                    esc(&smp.text)
                );
            }
            if let Some(g) = row.gone_at {
                let _ = write!(out, "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#57606a\">✕<title>gone from the group</title></text>", x(g) + 2.0, y + 14.0);
            }
            out.push_str("</g>");
            y += ROW;
        }
        for (n, m) in lane.marks.iter().enumerate() {
            let mx = x(m.t);
            let (colour, width, dash, id) = match m.kind {
                "rollback" => ("#cf222e", 3.0, "", format!(" id=\"rollback-marker-{}\"", esc(name))),
                "checkpoint" => ("#6e40c9", 1.5, " stroke-dasharray=\"4,3\"", String::new()),
                _ => ("#0969da", 1.5, " stroke-dasharray=\"2,2\"", String::new()),
            };
            // Alternate two label heights so markers close in time do not print over each other.
            let ly = lane_top + 11.0 + (n % 2) as f64 * 12.0;
            let _ = write!(
                out,
                "<g class=\"marker {kind}-marker\"{id}><line x1=\"{mx:.1}\" y1=\"{:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash}/><text x=\"{:.1}\" y=\"{ly:.1}\" fill=\"{colour}\" font-weight=\"bold\">{}</text><title>{}</title></g>",
                lane_top + 26.0,
                y,
                mx + 3.0,
                esc(&m.label),
                esc(&m.detail),
                kind = m.kind,
            );
        }
        out.push_str("</g>\n");
        y += ROW * 0.5;
    }
    out.push_str("</svg>\n");
    for (name, lane) in &lanes {
        if let Some(m) = lane.marks.iter().find(|m| m.kind == "rollback") {
            let _ = writeln!(
                out,
                "<p class=\"rollback-reason\" id=\"rollback-reason-{}\"><b style=\"color:#cf222e\">Rollback of {} at +{:.1}s:</b> {}</p>",
                esc(name),
                esc(name),
                on_clock(input, m.t),
                esc(&m.detail)
            );
        }
    }
    out
}
