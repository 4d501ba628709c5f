//! The metric gate's verdicts on what users got from the new release, from load balancer counts: its 5XX
//! rate against the baseline's (a statistical test on counts) and its latency against the baseline's (a
//! ratio with a floor). Too few requests is no evidence, never a pass or a fail by itself. Pure arithmetic
//! over totals the gate (`super::metric_gate`) adds up minute by minute; table-tested.
//!
//! **The error-rate test** is a one-sided two-proportion z-test with a margin (a non-inferiority test
//! turned round): it convicts only when the data show, at p < `SIGNIFICANCE`, that the new release's 5XX
//! rate exceeds the baseline's by more than `max_error_rate_increase`. Why this one:
//! - requests either fail or not, and the two sides have very different sizes (ten minutes of the whole
//!   fleet against the minutes the new instances served): a test on two proportions uses both sizes;
//! - the margin makes the answer to "is it worse by more than the user tolerates" rather than "is it
//!   different at all": at 100 000 requests a minute a 0.01 point difference is significant and harmless,
//!   and a release as good as the old one sits a whole margin away from conviction whatever the traffic,
//!   so looking again every minute cannot wear it down;
//! - 5XX are rare (0.1-1 %): the plain Wald interval is too narrow near zero and convicts on a handful of
//!   errors, so each proportion is Agresti-Caffo adjusted (one error and one success added to each side,
//!   Agresti & Caffo 2000, "Simple and effective confidence intervals for proportions and differences of
//!   proportions result from adding two successes and two failures"), which keeps the test's level near
//!   its nominal value down to small counts.
//!
//! **Weighting**: in a minute where new instances carried a share w of the requests, the group's rate is
//! (1 − w)·old + w·new, so its excess over the baseline is w times the new release's; the excess and its
//! standard error are divided by the requests-weighted mean share. (Exact when the old instances keep
//! their rate, which is the comparison's assumption.)
//!
//! **Latency**: p99 of TargetResponseTime where CloudWatch has percentiles, else the average, over the
//! minutes in which the new instances carried at least half of the requests, against the baseline's, as
//! a ratio whose denominator is at least `LATENCY_FLOOR_SECS`. A p99 of a mixture never exceeds the larger
//! of its parts' p99s, so the measured ratio understates the new release's: no correction is needed for
//! safety. The average is corrected like the error rate (the share is at least a half, so noise is at most
//! doubled).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The error-rate test's level: one false conviction in a thousand looks at a release exactly at the margin.
pub const SIGNIFICANCE: f64 = 0.001;
/// Below 50 ms a p99 doubling is not something users notice (a GC pause, a network hop), so latency ratios
/// are taken against at least this.
pub const LATENCY_FLOOR_SECS: f64 = 0.05;
/// Latency is judged over minutes in which the new instances carried at least this share of requests.
pub const LATENCY_MIN_SHARE: f64 = 0.5;

/// `metrics` in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsMode {
    /// Read the load balancer's metrics of every target group behind an ALB.
    #[default]
    Auto,
    Off,
}

/// The metric gate's settings (README "The health gate").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricParams {
    pub mode: MetricsMode,
    /// The largest tolerated increase of the 5XX rate, as a fraction (0.01 = 1 percentage point).
    pub max_error_rate_increase: f64,
    /// The largest tolerated ratio of the new release's latency to the baseline's.
    pub max_latency_ratio: f64,
    /// Requests the new release must have served (and the baseline must hold) before a verdict.
    pub min_requests: u32,
}

impl Default for MetricParams {
    fn default() -> Self {
        Self { mode: MetricsMode::Auto, max_error_rate_increase: 0.01, max_latency_ratio: 1.5, min_requests: 200 }
    }
}

/// Requests and 5XX answers over some minutes; `new_requests`: Σ requests × the new instances' share.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub requests: f64,
    pub errors: f64,
    pub new_requests: f64,
}

impl Counts {
    pub fn add(&mut self, requests: f64, errors: f64, share: f64) {
        self.requests += requests;
        self.errors += errors;
        self.new_requests += requests * share;
    }

    fn rate(&self) -> f64 {
        if self.requests > 0.0 { self.errors / self.requests } else { 0.0 }
    }
}

/// Response times over some minutes: request-weighted sums of each minute's p99 (where it has one) and
/// average, and the requests they weigh.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latencies {
    pub requests: f64,
    pub new_requests: f64,
    pub p99_sum: f64,
    pub p99_requests: f64,
    pub avg_sum: f64,
    pub avg_requests: f64,
}

impl Latencies {
    pub fn add(&mut self, requests: f64, share: f64, p99: Option<f64>, avg: Option<f64>) {
        self.requests += requests;
        self.new_requests += requests * share;
        if let Some(p) = p99 {
            self.p99_sum += p * requests;
            self.p99_requests += requests;
        }
        if let Some(a) = avg {
            self.avg_sum += a * requests;
            self.avg_requests += requests;
        }
    }
}

/// A verdict: no evidence (why), or a pass or fail with what was measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement<T> {
    NoEvidence(String),
    Pass(T),
    Fail(T),
}

impl<T> Judgement<T> {
    pub fn failed(&self) -> Option<&T> {
        match self {
            Self::Fail(t) => Some(t),
            _ => None,
        }
    }

    pub fn measured(&self) -> Option<&T> {
        match self {
            Self::Pass(t) | Self::Fail(t) => Some(t),
            Self::NoEvidence(_) => None,
        }
    }
}

/// The error-rate measurement behind a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateFinding {
    /// The new release's 5XX rate (weighted estimate) and the baseline's, as fractions.
    pub new_rate: f64,
    pub old_rate: f64,
    /// Requests the new release served (estimated from the shares).
    pub new_requests: f64,
    pub p_value: f64,
}

/// Which statistic a latency verdict used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyStat {
    P99,
    Average,
}

/// The latency measurement behind a verdict, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyFinding {
    pub stat: LatencyStat,
    pub new_secs: f64,
    pub old_secs: f64,
    /// new / max(old, LATENCY_FLOOR_SECS).
    pub ratio: f64,
    pub new_requests: f64,
}

fn too_few(new_requests: f64, baseline: f64, min: u32) -> Option<String> {
    let min_f = f64::from(min);
    if new_requests < min_f {
        return Some(format!("too few requests on the new release yet ({} of min_requests {min})", count(new_requests)));
    }
    if baseline < min_f {
        return Some(format!("too few requests in the baseline ({} of min_requests {min})", count(baseline)));
    }
    None
}

/// The 5XX verdict on `window` (minutes the new instances served, with their shares) against `baseline`.
pub fn error_verdict(window: &Counts, baseline: &Counts, params: &MetricParams) -> Judgement<RateFinding> {
    if let Some(why) = too_few(window.new_requests, baseline.requests, params.min_requests) {
        return Judgement::NoEvidence(why);
    }
    let share = (window.new_requests / window.requests).clamp(1e-6, 1.0);
    let (n1, n0) = (window.requests + 2.0, baseline.requests + 2.0);
    let (p1, p0) = ((window.errors + 1.0) / n1, (baseline.errors + 1.0) / n0);
    let excess = (p1 - p0) / share;
    let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt() / share;
    let z = (excess - params.max_error_rate_increase) / se;
    let p_value = upper_tail(z);
    let old_rate = baseline.rate();
    let new_rate = (old_rate + (window.rate() - old_rate) / share).clamp(0.0, 1.0);
    let finding = RateFinding { new_rate, old_rate, new_requests: window.new_requests, p_value };
    if p_value < SIGNIFICANCE {
        Judgement::Fail(finding)
    } else {
        Judgement::Pass(finding)
    }
}

/// The latency verdict on `window` (minutes in which the new instances carried at least half of the
/// requests) against `baseline`.
pub fn latency_verdict(window: &Latencies, baseline: &Latencies, params: &MetricParams) -> Judgement<LatencyFinding> {
    if let Some(why) = too_few(window.new_requests, baseline.requests, params.min_requests) {
        return Judgement::NoEvidence(why);
    }
    let min = f64::from(params.min_requests);
    let (stat, new_secs, old_secs) = if window.p99_requests >= min && baseline.p99_requests >= min {
        (LatencyStat::P99, window.p99_sum / window.p99_requests, baseline.p99_sum / baseline.p99_requests)
    } else if window.avg_requests >= min && baseline.avg_requests >= min {
        let (mix, old) = (window.avg_sum / window.avg_requests, baseline.avg_sum / baseline.avg_requests);
        let share = (window.new_requests / window.requests).clamp(LATENCY_MIN_SHARE, 1.0);
        (LatencyStat::Average, (old + (mix - old) / share).max(0.0), old)
    } else {
        return Judgement::NoEvidence("no response times published".into());
    };
    let ratio = new_secs / old_secs.max(LATENCY_FLOOR_SECS);
    let finding = LatencyFinding { stat, new_secs, old_secs, ratio, new_requests: window.new_requests };
    if ratio > params.max_latency_ratio {
        Judgement::Fail(finding)
    } else {
        Judgement::Pass(finding)
    }
}

/// P(Z > z) for a standard normal Z.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The standard normal cumulative distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    1.0 - upper_tail(z)
}

/// erfc with fractional error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit, `erfcc`): far
/// finer than the 1e-3 the verdict resolves.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// `1 840`: a count with a space between thousands, as the verdicts print it.
pub fn count(n: f64) -> String {
    let digits = format!("{}", n.max(0.0).round() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `4.1 %` (and two decimals below one percent: `0.21 %`).
pub fn percent(fraction: f64) -> String {
    let pct = fraction * 100.0;
    if pct >= 1.0 {
        return format!("{pct:.1} %");
    }
    let two = format!("{pct:.2}");
    let text = two.strip_suffix('0').unwrap_or(&two);
    format!("{text} %")
}

/// `420 ms`, `1.24 s`.
pub fn seconds(secs: f64) -> String {
    if secs < 1.0 { format!("{:.0} ms", secs * 1000.0) } else { format!("{secs:.2} s") }
}

/// `p < 0.001`, `p < 0.0001`, or `p = 0.04`.
pub fn p_text(p: f64) -> String {
    if p < 0.0001 {
        "p < 0.0001".into()
    } else if p < SIGNIFICANCE {
        "p < 0.001".into()
    } else {
        format!("p = {p:.2}")
    }
}

impl RateFinding {
    /// `5xx rate 4.1 % on the new release vs 0.2 % before, 1 840 requests, p < 0.001`; `against` says what
    /// the baseline is (`before`, `in shop-web over the same minutes`).
    pub fn text(&self, against: &str) -> String {
        format!(
            "5xx rate {} on the new release vs {} {against}, {} requests, {}",
            percent(self.new_rate),
            percent(self.old_rate),
            count(self.new_requests),
            p_text(self.p_value)
        )
    }
}

impl LatencyFinding {
    pub fn text(&self, against: &str) -> String {
        let stat = match self.stat {
            LatencyStat::P99 => "p99 latency",
            LatencyStat::Average => "average latency",
        };
        format!(
            "{stat} {} on the new release vs {} {against} ({:.1}×), {} requests",
            seconds(self.new_secs),
            seconds(self.old_secs),
            self.ratio,
            count(self.new_requests)
        )
    }
}

/// What a piece of metric evidence measured, for the JSON summary and the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricEvidence {
    /// The published minute whose verdict this is (its start, Unix ms, as CloudWatch stamps it).
    pub minute_ms: i64,
    /// When the poll that judged it began (Unix ms, bakeroll's clock).
    pub seen_ms: i64,
    /// `before` (the target group's own minutes before the refresh) or `canary` (other target groups of
    /// the same load balancer over the same minutes).
    pub comparison: String,
    /// The canary comparison's reference target groups (names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reference: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<RateFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyFinding>,
}

impl fmt::Display for MetricParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let points = self.max_error_rate_increase * 100.0;
        let unit = if points == 1.0 { "point" } else { "points" };
        write!(
            f,
            "a 5xx rate more than {points} {unit} above the baseline's (p < {SIGNIFICANCE}) or a latency more than {}× the baseline's, \
             once {} requests are in",
            self.max_latency_ratio, self.min_requests
        )
    }
}

#[cfg(test)]
#[path = "metric_verdict_tests.rs"]
mod tests;
