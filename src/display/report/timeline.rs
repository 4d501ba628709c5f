//! The report's picture: per Auto Scaling group, one bar per instance from the first to the last poll
//! that saw it, coloured by its target health at each poll, with vertical markers for the refresh
//! start, each checkpoint reached, and the rollback (with its reason). In a release of several waves the
//! groups go wave by wave under a heading per wave (its span, where its groups ended, whether the release
//! stopped in it), groups never watched included. Inline SVG, no scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::lanes::{self, lanes, Lane};
use super::waves::{self, Wave};
use super::{esc, on_clock, ReportInput};
use crate::summary::Summary;

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

/// What the picture shows, top to bottom: each watched group, or, in a release of several waves, each
/// wave's heading followed by its groups.
enum Block<'a> {
    Wave(&'a Wave),
    /// A watched group's instances (`wave`: its wave, in a release of several).
    Lane { name: &'a str, lane: &'a Lane, wave: Option<usize> },
    /// A group of a wave whose refresh was never watched: its wave never came, it could not start, or it
    /// already ran the release.
    Idle { name: &'a str, wave: usize },
}

fn blocks<'a>(lanes: &'a BTreeMap<String, Lane>, waves: Option<&'a [Wave]>) -> Vec<Block<'a>> {
    let Some(waves) = waves else {
        return lanes.iter().map(|(name, lane)| Block::Lane { name, lane, wave: None }).collect();
    };
    let mut out = Vec::new();
    for w in waves {
        out.push(Block::Wave(w));
        for name in &w.groups {
            out.push(match lanes.get(name) {
                Some(lane) => Block::Lane { name, lane, wave: Some(w.number) },
                None => Block::Idle { name, wave: w.number },
            });
        }
    }
    // A watched group the release did not name (none is expected): after the waves, unlabelled.
    let named = |n: &String| waves.iter().any(|w| w.groups.contains(n));
    out.extend(lanes.iter().filter(|(n, _)| !named(n)).map(|(name, lane)| Block::Lane { name, lane, wave: None }));
    out
}

fn height_of(block: &Block) -> f64 {
    match block {
        Block::Wave(_) => ROW * 1.5,
        Block::Lane { lane, .. } => (lane.rows.len() + 2) as f64 * ROW,
        Block::Idle { .. } => ROW,
    }
}

/// Where the picture's times go: Unix ms → x.
struct Scale {
    t0: u64,
    t1: u64,
    span: f64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        LABEL + (t.saturating_sub(self.t0) as f64 / 1000.0) / self.span * (WIDTH - LABEL - RIGHT)
    }
}

pub fn render(input: &ReportInput) -> String {
    let lanes = lanes(input);
    let mut out = String::from("<h2>Timeline</h2>\n");
    if lanes.is_empty() {
        out.push_str("<p id=\"timeline-empty\">No instance refresh was watched in this run.</p>\n");
        return out;
    }
    let waves = waves::of(input);
    let blocks = blocks(&lanes, waves.as_deref());
    let t0 = lanes.values().filter_map(|l| l.first).min().unwrap_or(0);
    let t1 = input.events.last().map(|(t, _)| *t).unwrap_or(t0).max(t0 + 1000);
    let scale = Scale { t0, t1, span: (t1 - t0) as f64 / 1000.0 };
    let span = scale.span;
    let plot = WIDTH - LABEL - RIGHT;
    let height = TOP + blocks.iter().map(height_of).sum::<f64>() + 30.0;
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
    let count = waves.as_ref().map_or(0, Vec::len);
    for block in &blocks {
        match block {
            Block::Wave(w) => wave_heading(&mut out, input, &scale, &lanes, w, count, y),
            Block::Lane { name, lane, wave } => lane_rows(&mut out, input, &scale, name, lane, *wave, y),
            Block::Idle { name, wave } => {
                let state = waves::state_text(input, name).unwrap_or_else(|| "never watched".into());
                let _ = writeln!(
                    out,
                    "<g class=\"idle\" data-group=\"{n}\" data-wave=\"{wave}\"><text x=\"10\" y=\"{:.1}\" fill=\"#57606a\" font-style=\"italic\">group {n} (wave {wave}) — {}</text></g>",
                    y + 14.0,
                    esc(&state),
                    n = esc(name),
                );
            }
        }
        y += height_of(block);
    }
    out.push_str("</svg>\n");
    // The rollbacks in the order they happened: a release's conviction first, then the groups it moved back.
    let mut rollbacks: Vec<(&str, &lanes::Mark)> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Lane { name, lane, .. } => Some((*name, lane.marks.iter().find(|m| m.kind == "rollback")?)),
            _ => None,
        })
        .collect();
    rollbacks.sort_by_key(|(_, m)| m.t);
    for (name, m) in rollbacks {
        let _ = writeln!(
            out,
            "<p class=\"rollback-reason\" id=\"rollback-reason-{}\"><b style=\"color:#cf222e\">Rollback of {} at +{:.1}s:</b> {}</p>",
            esc(name),
            esc(name),
            on_clock(input, m.t),
            esc(&m.detail)
        );
    }
    out
}

/// A wave's heading across the picture: its number, where its groups ended, whether the release stopped
/// in it, and a bar from its groups' first refresh to the last verdict of that first rollout, so that one
/// wave is seen to finish before the next begins.
fn wave_heading(out: &mut String, input: &ReportInput, scale: &Scale, lanes: &BTreeMap<String, Lane>, w: &Wave, count: usize, y: f64) {
    let watched: Vec<(u64, u64)> = w.groups.iter().filter_map(|g| lanes.get(g)?.watch).collect();
    let span = watched.iter().map(|w| w.0).min().zip(watched.iter().map(|w| w.1).max());
    let colour = if w.stopped.is_some() { "#cf222e" } else { "#0969da" };
    let mut text = format!("wave {} of {count}", w.number);
    let state = waves::wave_state(input, w);
    if !state.is_empty() {
        let _ = write!(text, " · {state}");
    }
    if let Some((a, b)) = span {
        let _ = write!(text, " · rolled out +{:.1}s → +{:.1}s", on_clock(input, a), on_clock(input, b));
    }
    if let Some(why) = &w.stopped {
        let _ = write!(text, " · {why}");
    }
    let stopped = if w.stopped.is_some() { " data-stopped=\"true\"" } else { "" };
    let _ = write!(
        out,
        "<g class=\"wave\" id=\"wave-{n}\" data-wave=\"{n}\"{stopped}><rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{:.1}\" fill=\"#f6f8fa\"/><line x1=\"0\" y1=\"{y:.1}\" x2=\"{WIDTH}\" y2=\"{y:.1}\" stroke=\"{colour}\"/><text x=\"10\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"13\" fill=\"{colour}\">{}</text>",
        ROW * 1.5 - 2.0,
        y + 14.0,
        esc(&text),
        n = w.number,
    );
    if let Some((a, b)) = span {
        let _ = write!(
            out,
            "<rect class=\"wave-span\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"5\" fill=\"{colour}\"><title>wave {}: from its first refresh at +{:.1}s to its groups' verdict at +{:.1}s</title></rect>",
            scale.x(a),
            y + 20.0,
            (scale.x(b) - scale.x(a)).max(2.0),
            w.number,
            on_clock(input, a),
            on_clock(input, b)
        );
    }
    out.push_str("</g>\n");
}

/// One watched group: its heading, a bar per instance, and its markers.
fn lane_rows(out: &mut String, input: &ReportInput, scale: &Scale, name: &str, lane: &Lane, wave: Option<usize>, top: f64) {
    let x = |t: u64| scale.x(t);
    let (label, data_wave) = match wave {
        Some(n) => (format!("group {} (wave {n})", esc(name)), format!(" data-wave=\"{n}\"")),
        None => (format!("group {}", esc(name)), String::new()),
    };
    let _ = write!(out, "<g class=\"lane\" data-group=\"{}\"{data_wave}>", esc(name));
    let _ = write!(out, "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"13\">{label}</text>", top + 14.0);
    let mut y = top + ROW * 1.5;
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
            let end = row.samples.get(i + 1).map(|n| n.t).or(row.gone_at).unwrap_or(scale.t1);
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
        let ly = top + 11.0 + (n % 2) as f64 * 12.0;
        let _ = write!(
            out,
            "<g class=\"marker {kind}-marker\"{id}><line x1=\"{mx:.1}\" y1=\"{:.1}\" x2=\"{mx:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash}/><text x=\"{:.1}\" y=\"{ly:.1}\" fill=\"{colour}\" font-weight=\"bold\">{}</text><title>{}</title></g>",
            top + 26.0,
            y,
            mx + 3.0,
            esc(&m.label),
            esc(&m.detail),
            kind = m.kind,
        );
    }
    out.push_str("</g>\n");
}
