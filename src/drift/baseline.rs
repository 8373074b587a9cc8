//! Reference datasets kept as summaries: a table (CSV, NDJSON or Parquet) is summarised column
//! by column exactly as ingest summarises events, and only the summaries are stored.
//!
//! Column names map to what the service watches: `prediction.score`, `prediction.label`,
//! `feedback_explicit.rating`... (a class name and a dot) go to that class; every other column
//! is a model input named as the column.

use crate::dataset::{RawColumn, Table};
use crate::store::{BaselineInfo, NamedSummary, Store, StoreError};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;

/// Check a baseline name: 1–64 letters, digits, `-`, `_` or `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "name: {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn class_of(column: &str) -> (SeriesClass, &str) {
    if let Some((prefix, rest)) = column.split_once('.') {
        if let Some(c) = SeriesClass::parse(prefix) {
            if !rest.is_empty() {
                return (c, rest);
            }
        }
    }
    (SeriesClass::Input, column)
}

/// Summarise every column of a table.
pub fn summarise(table: &Table, sketch_k: u16, category_cap: usize) -> Vec<NamedSummary> {
    table
        .names
        .iter()
        .zip(&table.columns)
        .map(|(name, col)| {
            let (class, feature) = class_of(name);
            let mut s = FeatureSummary::new(sketch_k, category_cap);
            match col {
                RawColumn::Numbers(v) => v.iter().for_each(|&x| {
                    if x.is_nan() {
                        s.add_missing()
                    } else {
                        s.add_number(x)
                    }
                }),
                RawColumn::Labels(l) => (0..l.codes.len()).for_each(|i| match l.get(i) {
                    Some(v) => {
                        s.add_category(v);
                    }
                    None => s.add_missing(),
                }),
            }
            NamedSummary {
                class,
                name: feature.to_owned(),
                summary: s,
            }
        })
        .collect()
}

/// Summarise and store a table as the baseline `name` of `model`.
pub async fn store_table(
    store: &dyn Store,
    name: &str,
    model: &str,
    table: &Table,
    source: &str,
    now_us: i64,
    (sketch_k, category_cap): (u16, usize),
) -> Result<BaselineInfo, StoreError> {
    let summaries = summarise(table, sketch_k, category_cap);
    let info = BaselineInfo {
        name: name.to_owned(),
        model: model.to_owned(),
        created_at_us: now_us,
        rows: table.rows() as u64,
        source: source.to_owned(),
        features: summaries.len() as u64,
    };
    store.series().put_baseline(&info, &summaries).await?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{read_bytes, TextFormat};

    #[test]
    fn columns_map_to_classes_and_summaries_match_ingest() {
        let csv =
            "age,prediction.score,prediction.label,country\n30,0.5,yes,FR\n,0.7,no,DE\n40,,yes,\n";
        let t = read_bytes(
            csv.as_bytes(),
            TextFormat::Csv,
            "upload",
            &Default::default(),
        )
        .expect("csv");
        let s = summarise(&t, 512, 256);
        let find = |c: SeriesClass, n: &str| {
            s.iter()
                .find(|x| x.class == c && x.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let age = &find(SeriesClass::Input, "age").summary;
        assert_eq!((age.moments.n, age.missing, age.moments.mean), (2, 1, 35.0));
        assert_eq!(find(SeriesClass::Prediction, "score").summary.missing, 1);
        let label = &find(SeriesClass::Prediction, "label").summary;
        assert_eq!(label.categories.counts.get("yes"), Some(&2));
        let country = &find(SeriesClass::Input, "country").summary;
        assert_eq!((country.categories.total(), country.missing), (2, 1));
        assert!(check_name("ref-2026.11").is_ok());
        assert!(check_name("a b").is_err() && check_name("").is_err());
    }
}
