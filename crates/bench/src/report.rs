//! The bench table: rows, sample statistics, and rendering as text or JSON.

use serde::Serialize;

/// Median and 90th percentile of a set of samples (nearest-rank).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Stats {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let at = |q: f64| {
            if n == 0 {
                return f64::NAN;
            }
            let rank = (q * n as f64).ceil() as usize;
            sorted[rank.clamp(1, n) - 1]
        };
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Stats {
            n,
            median,
            p90: at(0.9),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            samples: samples.to_vec(),
        }
    }

    fn brief(&self, unit: &str) -> String {
        format!(
            "n={} med {} p90 {}",
            self.n,
            number(self.median, unit),
            number(self.p90, unit)
        )
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub measurement: String,
    /// `ms`, `MB`, `s`, `/s`, `×`, `r` (a ratio) or empty (a count).
    pub unit: &'static str,
    /// Our figure (usually the median of `samples`).
    pub ours: f64,
    /// The same thing without Orchestra, when there is one.
    pub baseline: Option<f64>,
    /// The target as written in the issue, e.g. `≤ +5 ms`.
    pub target: String,
    /// `ours − baseline`, or `ours / baseline` for ratio targets, as shown.
    pub comparison: String,
    /// `None` for context rows that have no target.
    pub pass: Option<bool>,
    pub samples: Option<Stats>,
    pub baseline_samples: Option<Stats>,
}

impl Row {
    /// A context row: a figure with no target.
    pub fn info(measurement: impl Into<String>, unit: &'static str, ours: f64) -> Row {
        Row {
            measurement: measurement.into(),
            unit,
            ours,
            baseline: None,
            target: "—".into(),
            comparison: "—".into(),
            pass: None,
            samples: None,
            baseline_samples: None,
        }
    }

    /// The median of `samples` against the median of `baseline`.
    pub fn versus(
        measurement: impl Into<String>,
        unit: &'static str,
        samples: &[f64],
        baseline: &[f64],
    ) -> Row {
        let base = Stats::of(baseline);
        Row {
            baseline: Some(base.median),
            baseline_samples: Some(base),
            ..Row::info(measurement, unit, Stats::of(samples).median).with_samples(samples)
        }
    }

    /// A context row: the median of `samples`, no target.
    pub fn observed(measurement: impl Into<String>, unit: &'static str, samples: &[f64]) -> Row {
        Row::info(measurement, unit, Stats::of(samples).median).with_samples(samples)
    }

    /// Judges our figure against an absolute limit, showing how it compares to the baseline.
    pub fn at_most(self, limit: f64, against: &str) -> Row {
        let shown = match self.baseline {
            Some(base) => format!("{} vs {against}", difference(self.ours - base, self.unit)),
            None => "—".into(),
        };
        let (ours, unit) = (self.ours, self.unit);
        self.judged(format!("≤ {}", number(limit, unit)), ours, limit, shown)
    }

    pub fn with_samples(mut self, samples: &[f64]) -> Row {
        self.samples = Some(Stats::of(samples));
        self
    }

    /// A comparison shown without a verdict.
    pub fn with_comparison(mut self, shown: String) -> Row {
        self.comparison = shown;
        self
    }

    /// Judges `value` against `limit` (≥), describing the comparison.
    pub fn judged_at_least(
        self,
        target: impl Into<String>,
        value: f64,
        limit: f64,
        shown: String,
    ) -> Row {
        self.verdict(target.into(), shown, value.is_finite() && value >= limit)
    }

    /// Judges `value` against `limit` (≤), describing the comparison.
    pub fn judged(self, target: impl Into<String>, value: f64, limit: f64, shown: String) -> Row {
        self.verdict(target.into(), shown, value.is_finite() && value <= limit)
    }

    fn verdict(mut self, target: String, shown: String, pass: bool) -> Row {
        self.target = target;
        self.comparison = shown;
        self.pass = Some(pass);
        self
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub machine: String,
    pub command: String,
    pub total_seconds: f64,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn render(&self) -> String {
        let header = [
            "measurement",
            "ours",
            "baseline",
            "target",
            "ratio / difference",
            "result",
            "samples (ours; baseline)",
        ];
        let mut lines: Vec<[String; 7]> = Vec::new();
        for row in &self.rows {
            let samples = match (&row.samples, &row.baseline_samples) {
                (Some(ours), Some(base)) => {
                    format!("{}; {}", ours.brief(row.unit), base.brief(row.unit))
                }
                (Some(ours), None) => ours.brief(row.unit),
                (None, _) => "—".into(),
            };
            lines.push([
                row.measurement.clone(),
                number(row.ours, row.unit),
                row.baseline
                    .map_or_else(|| "—".into(), |b| number(b, row.unit)),
                row.target.clone(),
                row.comparison.clone(),
                match row.pass {
                    Some(true) => "pass".into(),
                    Some(false) => "FAIL".into(),
                    None => "info".into(),
                },
                samples,
            ]);
        }
        let mut out = format!(
            "orchestra-bench — {} — {:.0} s\n\n",
            self.machine, self.total_seconds
        );
        out.push_str(&markdown_row(&header.map(String::from)));
        out.push_str(&markdown_row(&header.map(|_| "---".to_owned())));
        for line in &lines {
            out.push_str(&markdown_row(line));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                out.push_str(&format!("- {note}\n"));
            }
        }
        out
    }
}

fn markdown_row(cells: &[String; 7]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// A figure with its unit, with precision that suits its size.
pub fn number(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if unit.is_empty() {
        return format!("{value:.0}");
    }
    if unit == "r" {
        // A ratio such as recall: three decimals, no unit.
        return format!("{value:.3}");
    }
    let digits = match unit {
        "×" => 2,
        "s" => 2,
        _ if value.abs() < 10.0 => 2,
        _ if value.abs() < 100.0 => 1,
        _ => 0,
    };
    match unit {
        "×" => format!("{value:.digits$}×"),
        _ => format!("{value:.digits$} {unit}"),
    }
}

/// A signed difference with its unit.
pub fn difference(value: f64, unit: &str) -> String {
    let text = number(value, unit);
    if value >= 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// CPU count, model and memory, read from /proc where it exists.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(String::new, |kb| {
            format!(", {:.1} GB RAM", kb / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({model}){memory}, {}", std::env::consts::OS)
}
