//! `flywheel compare --reference REF --current CUR`: drift between two datasets, with the same
//! engine the service runs on live traffic.

use crate::dataset;
use crate::drift::{self, columns, Compat, Method, Options};
use crate::stats::binning::BinningRule;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BinningArg {
    Quantile,
    Sturges,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompatArg {
    Flywheel,
    Evidently,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Reference dataset (.csv with a header row, .ndjson/.jsonl, or .parquet).
    #[arg(long)]
    pub reference: PathBuf,
    /// Current dataset, same formats.
    #[arg(long)]
    pub current: PathBuf,
    /// Statistic: auto, ks, chisquare, ztest, wasserstein, wasserstein_normed, jensenshannon,
    /// psi, kl, hellinger, anderson, cramervonmises, energy.
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Threshold of the method (tests: drift when p < T; distances: when statistic ≥ T). With
    /// `auto`, the effect-size threshold.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Only these columns (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Treat these columns as categorical.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Treat these columns as numeric.
    #[arg(long, value_delimiter = ',')]
    pub numeric: Vec<String>,
    /// Binning of PSI, KL and JS on numeric columns.
    #[arg(long, value_enum, default_value = "quantile")]
    pub binning: BinningArg,
    /// Number of quantile bins.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Reproduce another tool's definitions and defaults.
    #[arg(long, value_enum, default_value = "flywheel")]
    pub compat: CompatArg,
    /// Fewer values than this on a side gives `insufficient_data`.
    #[arg(long, default_value_t = 30)]
    pub min_samples: usize,
    /// Share of drifted columns at which the dataset counts as drifted.
    #[arg(long, default_value_t = 0.5)]
    pub drift_share: f64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 1 when the dataset drifted.
    #[arg(long)]
    pub fail_on_drift: bool,
    /// More cell values to read as missing (comma-separated), besides the usual markers
    /// (NA, N/A, null, NaN, None, #N/A, an empty cell... as pandas reads them).
    #[arg(long, value_delimiter = ',')]
    pub na_values: Vec<String>,
    /// Read only `--na-values` (and empty cells) as missing, not the usual markers.
    #[arg(long)]
    pub no_default_na: bool,
    /// CSV delimiter (one character, `\t` for tab); default: detected from the header row
    /// (`,` `;` tab or `|`).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Multivariate drift (PCA reconstruction error) over at most this many numeric columns,
    /// the first in the reference's order; 0 leaves it out. It does not change the dataset
    /// verdict or the exit code, which stay per column.
    #[arg(long, default_value_t = 20)]
    pub multivariate_features: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    #[error(transparent)]
    Columns(#[from] columns::ColumnError),
    #[error("{0}")]
    Usage(String),
}

impl CompareArgs {
    fn read_options(&self) -> Result<dataset::ReadOptions, CompareError> {
        let mut opts = dataset::ReadOptions::default();
        if self.no_default_na {
            opts.na_values = vec![String::new()];
        }
        opts.na_values.extend(self.na_values.iter().cloned());
        opts.delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("\\t") | Some("\t") | Some("tab") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(d) => {
                return Err(CompareError::Usage(format!(
                    "--delimiter {d:?} must be one ASCII character (or \\t for tab)"
                )))
            }
        };
        Ok(opts)
    }

    fn selection(&self) -> columns::Selection {
        columns::Selection {
            columns: self.columns.clone(),
            categorical: self.categorical.clone(),
            numeric: self.numeric.clone(),
        }
    }
}

pub fn options(args: &CompareArgs) -> Result<Options, CompareError> {
    let method = Method::parse(&args.method).ok_or_else(|| {
        CompareError::Usage(format!(
            "unknown method {:?}; use one of {}",
            args.method,
            Method::ALL
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if args.bins == 0 {
        return Err(CompareError::Usage("--bins must be at least 1".into()));
    }
    if let Some(t) = args.threshold {
        if !t.is_finite() || t < 0.0 {
            return Err(CompareError::Usage(format!(
                "--threshold {t} must be a non-negative number"
            )));
        }
    }
    Ok(Options {
        method,
        threshold: args.threshold,
        binning: match args.binning {
            BinningArg::Quantile => BinningRule::Quantile(args.bins),
            BinningArg::Sturges => BinningRule::Sturges,
        },
        compat: match args.compat {
            CompatArg::Flywheel => Compat::Flywheel,
            CompatArg::Evidently => Compat::Evidently,
        },
        min_samples: args.min_samples,
        drift_share: args.drift_share,
        ..Options::default()
    })
}

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

pub fn render_table(rep: &drift::Report) -> String {
    let mut rows = vec![[
        "column".to_owned(),
        "kind".into(),
        "method".into(),
        "statistic".into(),
        "p_value".into(),
        "p_adjusted".into(),
        "score".into(),
        "rule".into(),
        "n_ref".into(),
        "n_cur".into(),
        "decision".into(),
    ]];
    for c in &rep.columns {
        // The rule the score was decided by, e.g. `ks_d >= 0.01, p_adj <= 0.01`.
        let mut rule = format!(
            "{} {} {}",
            c.score_name,
            c.drift_when.as_str(),
            fmt_num(Some(c.threshold))
        );
        if let Some(a) = c.alpha {
            rule.push_str(&format!(", p_adj <= {}", fmt_num(Some(a))));
        }
        rows.push([
            c.column.clone(),
            c.kind.as_str().into(),
            c.method.as_str().into(),
            fmt_num(c.statistic),
            fmt_num(c.p_value),
            fmt_num(c.p_adjusted),
            fmt_num(c.score),
            rule,
            c.n_reference.to_string(),
            c.n_current.to_string(),
            match c.decision {
                drift::Decision::Drift => "DRIFT".into(),
                drift::Decision::NoDrift => "ok".into(),
                drift::Decision::InsufficientData => "insufficient_data".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..11)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} of {} columns drifted ({:.0} %); dataset drift: {}\n",
        rep.drifted_columns,
        rep.columns.len(),
        rep.share_drifted * 100.0,
        if rep.dataset_drift { "YES" } else { "no" }
    ));
    if let Some(m) = &rep.multivariate {
        out.push_str(&format!(
            "Multivariate ({} numeric columns, {} components, {:.0} % of the variance): \
             reconstruction error {:.4}, reference band {:.4} to {:.4}: {}\n",
            m.features.len(),
            m.components,
            m.explained_variance * 100.0,
            m.score,
            m.band.lower,
            m.band.upper,
            if m.drifted { "DRIFTED" } else { "within" }
        ));
    }
    out
}

/// The multivariate comparison of the numeric columns both tables share (within `--columns`,
/// not forced categorical), or why there is none (said on stderr; it is an addition to the
/// per-column report, never a reason to fail the command).
fn multivariate(
    args: &CompareArgs,
    r: &dataset::Table,
    c: &dataset::Table,
) -> Option<drift::multivariate::MultivariateReport> {
    use dataset::RawColumn;
    if args.multivariate_features == 0 {
        return None;
    }
    let mut names = Vec::new();
    let (mut rc, mut cc): (Vec<&[f64]>, Vec<&[f64]>) = (Vec::new(), Vec::new());
    for name in &r.names {
        if names.len() == args.multivariate_features
            || (!args.columns.is_empty() && !args.columns.contains(name))
            || args.categorical.contains(name)
        {
            continue;
        }
        if let (Some(RawColumn::Numbers(a)), Some(RawColumn::Numbers(b))) =
            (r.column(name), c.column(name))
        {
            names.push(name.clone());
            rc.push(a);
            cc.push(b);
        }
    }
    match drift::multivariate::compare(&names, &rc, &cc) {
        Ok(m) => Some(m),
        Err(why) => {
            eprintln!("note: no multivariate drift: {why}");
            None
        }
    }
}

/// Run the command; returns the exit code.
pub fn run(args: CompareArgs) -> i32 {
    let result = (|| -> Result<drift::Report, CompareError> {
        let opts = options(&args)?;
        let read = args.read_options()?;
        let (r, c) = rayon::join(
            || dataset::read(&args.reference, &read),
            || dataset::read(&args.current, &read),
        );
        let (r, c) = (r?, c?);
        for (side, t) in [("reference", &r), ("current", &c)] {
            for note in &t.notes {
                eprintln!("note: {side}: {note}");
            }
        }
        let multivariate = multivariate(&args, &r, &c);
        let inputs = columns::inputs(r, c, &args.selection())?;
        let mut rep = drift::compare(&inputs, &opts);
        rep.multivariate = multivariate;
        Ok(rep)
    })();
    match result {
        Ok(rep) => {
            match args.format {
                Format::Json => match serde_json::to_string_pretty(&rep) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("error: cannot encode the report: {e}");
                        return 2;
                    }
                },
                Format::Table => print!("{}", render_table(&rep)),
            }
            if args.fail_on_drift && rep.dataset_drift {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
