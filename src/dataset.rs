//! Reading a dataset for `flywheel compare` and baseline uploads: CSV with a header row,
//! NDJSON (one object per line), or Parquet, chosen by the file extension. Columns are typed
//! here: numbers (with missing), or text/boolean values (with missing).
//!
//! Datasets as people write them: the usual missing-value markers (pandas' list: `NA`, `N/A`,
//! `null`, `NaN`, `None`, `#N/A`...) are missing values, not text, in CSV cells and NDJSON
//! strings ([`ReadOptions::na_values`] changes the list); the CSV delimiter is detected from the
//! header row (`,` `;` tab or `|`) unless given; and when a column that looks numeric is kept as
//! categorical, [`Table::notes`] says which values kept it from being numeric.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use std::collections::HashMap;
use std::path::Path;

/// One column as read.
#[derive(Debug, Clone, PartialEq)]
pub enum RawColumn {
    /// Numbers; NaN is a missing value (8 bytes a cell).
    Numbers(Vec<f64>),
    /// Text or booleans (`"true"`/`"false"`), dictionary-encoded (4 bytes a cell).
    Labels(Labels),
}

/// A dictionary-encoded text column: `codes[i]` indexes `dict`, [`Labels::MISSING`] is missing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Labels {
    pub dict: Vec<String>,
    pub codes: Vec<u32>,
    index: std::collections::HashMap<String, u32>,
}

impl Labels {
    pub const MISSING: u32 = u32::MAX;

    pub fn push(&mut self, v: Option<&str>) {
        let code = match v {
            None => Self::MISSING,
            Some(s) => match self.index.get(s) {
                Some(&c) => c,
                None => {
                    let c = self.dict.len() as u32;
                    self.dict.push(s.to_owned());
                    self.index.insert(s.to_owned(), c);
                    c
                }
            },
        };
        self.codes.push(code);
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let c = self.codes[i];
        (c != Self::MISSING).then(|| self.dict[c as usize].as_str())
    }

    /// Count per dictionary entry (missing excluded).
    pub fn counts(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.dict.len()];
        for &c in &self.codes {
            if c != Self::MISSING {
                out[c as usize] += 1;
            }
        }
        out
    }
}

impl RawColumn {
    pub fn len(&self) -> usize {
        match self {
            RawColumn::Numbers(v) => v.len(),
            RawColumn::Labels(v) => v.codes.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<RawColumn>,
    /// What a reader should know about how columns were typed (one line each), e.g. a column
    /// kept as categorical because of a few non-numeric values.
    pub notes: Vec<String>,
}

/// The missing-value markers of pandas' `read_csv` (`na_values` defaults).
pub const DEFAULT_NA_VALUES: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// How text datasets are read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// Cell values (after trimming) read as missing. Default: [`DEFAULT_NA_VALUES`].
    pub na_values: Vec<String>,
    /// The CSV delimiter; `None`: detected from the header row.
    pub delimiter: Option<u8>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            na_values: DEFAULT_NA_VALUES.iter().map(|s| (*s).to_owned()).collect(),
            delimiter: None,
        }
    }
}

impl ReadOptions {
    fn is_na(&self, cell: &str) -> bool {
        let t = cell.trim();
        self.na_values.iter().any(|v| v == t)
    }
}

/// The delimiter of a CSV header line: the most frequent of `,` `;` tab `|` outside quotes
/// (`,` on a tie or when none occurs).
pub fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(c) = counts.iter_mut().find(|c| c.0 == b) {
                c.1 += 1;
            }
        }
    }
    counts
        .iter()
        .fold((b',', 0), |best, c| if c.1 > best.1 { *c } else { best })
        .0
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&RawColumn> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }
    /// Move a column out (its slot is left empty).
    pub fn take(&mut self, name: &str) -> Option<RawColumn> {
        let i = self.names.iter().position(|n| n == name)?;
        let empty = match &self.columns[i] {
            RawColumn::Numbers(_) => RawColumn::Numbers(Vec::new()),
            RawColumn::Labels(_) => RawColumn::Labels(Labels::default()),
        };
        self.names[i] = String::new();
        Some(std::mem::replace(&mut self.columns[i], empty))
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, RawColumn::len)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: unknown file type (use .csv, .ndjson/.jsonl or .parquet)")]
    UnknownFormat { path: String },
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
}

fn invalid(path: &Path, detail: impl Into<String>) -> DatasetError {
    DatasetError::Invalid {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Read a dataset by extension.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Table, DatasetError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "tsv" | "txt" => read_csv(path, opts),
        "ndjson" | "jsonl" | "json" => read_ndjson(path, opts),
        "parquet" | "pq" => read_parquet(path),
        _ => Err(DatasetError::UnknownFormat {
            path: path.display().to_string(),
        }),
    }
}

/// A cell as a number: `Some(None)` for missing, `None` when it is not a number.
fn parse_number(s: &str, opts: &ReadOptions) -> Option<Option<f64>> {
    let t = s.trim();
    if opts.is_na(t) {
        return Some(None);
    }
    t.parse::<f64>().ok().map(|x| x.is_finite().then_some(x))
}

/// Type text cells: numeric when every cell is missing or parses as a number, else labels. A
/// column that is mostly numbers but kept as labels gets a note naming the values that kept it.
fn type_cells(
    name: &str,
    cells: Vec<Option<String>>,
    opts: &ReadOptions,
    notes: &mut Vec<String>,
) -> RawColumn {
    let present = cells.iter().flatten().filter(|c| !opts.is_na(c)).count();
    let mut not_numbers: Vec<&str> = Vec::new();
    let mut bad = 0usize;
    for c in cells.iter().flatten() {
        if parse_number(c, opts).is_none() {
            bad += 1;
            if not_numbers.len() < 5 && !not_numbers.contains(&c.as_str()) {
                not_numbers.push(c);
            }
        }
    }
    if bad == 0 {
        return RawColumn::Numbers(
            cells
                .iter()
                .map(|c| {
                    c.as_deref()
                        .and_then(|s| parse_number(s, opts).flatten())
                        .unwrap_or(f64::NAN)
                })
                .collect(),
        );
    }
    // Mostly numbers: say what kept the column from being numeric.
    if bad * 2 < present {
        notes.push(format!(
            "column {name:?} is categorical: {bad} of {present} values are not numbers (e.g. {}); \
             use --na-values if they mean missing, or --numeric {name} to drop them",
            not_numbers
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut l = Labels::default();
    for c in &cells {
        l.push(c.as_deref().filter(|s| !opts.is_na(s)));
    }
    RawColumn::Labels(l)
}

/// The text formats a dataset can be sent in over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Csv,
    Ndjson,
}

/// Read a dataset from bytes (an upload); `label` names it in errors.
pub fn read_bytes(
    bytes: &[u8],
    format: TextFormat,
    label: &str,
    opts: &ReadOptions,
) -> Result<Table, DatasetError> {
    let path = Path::new(label);
    match format {
        TextFormat::Csv => csv_from_reader(bytes, path, opts),
        TextFormat::Ndjson => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| invalid(path, format!("not UTF-8 text: {e}")))?;
            ndjson_from_text(text, path, opts)
        }
    }
}

fn read_csv(path: &Path, opts: &ReadOptions) -> Result<Table, DatasetError> {
    let f = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    csv_from_reader(std::io::BufReader::new(f), path, opts)
}

fn csv_from_reader(
    r: impl std::io::Read,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Table, DatasetError> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(r);
    let delimiter = match opts.delimiter {
        Some(d) => d,
        None => {
            // The header line decides; it stays in the buffer for the CSV reader.
            let head = r
                .fill_buf()
                .map_err(|e| invalid(path, format!("cannot read: {e}")))?;
            let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
            sniff_delimiter(&String::from_utf8_lossy(line))
        }
    };
    // Flexible: a row of the wrong length gets this module's error (with the delimiter hint).
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(r);
    let names: Vec<String> = rdr
        .headers()
        .map_err(|e| invalid(path, format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(invalid(path, "the header row is empty"));
    }
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| invalid(path, format!("row {}: {e}", i + 2)))?;
        if rec.len() != names.len() {
            return Err(invalid(
                path,
                format!(
                    "row {}: {} cells, the header has {} (delimiter {:?}; give --delimiter if it is another)",
                    i + 2,
                    rec.len(),
                    names.len(),
                    delimiter as char
                ),
            ));
        }
        for (j, cell) in rec.iter().enumerate() {
            cells[j].push((!cell.is_empty()).then(|| cell.to_owned()));
        }
    }
    let mut notes = Vec::new();
    if names.len() == 1 && names[0].contains([',', ';', '\t', '|']) {
        notes.push(format!(
            "the file has one column, {:?}: if that is several columns, give --delimiter",
            names[0]
        ));
    }
    let columns = names
        .iter()
        .zip(cells)
        .map(|(n, c)| type_cells(n, c, opts, &mut notes))
        .collect();
    Ok(Table {
        names,
        columns,
        notes,
    })
}

fn read_ndjson(path: &Path, opts: &ReadOptions) -> Result<Table, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    ndjson_from_text(&text, path, opts)
}

fn ndjson_from_text(text: &str, path: &Path, opts: &ReadOptions) -> Result<Table, DatasetError> {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cols: Vec<Vec<Option<serde_json::Value>>> = Vec::new();
    let mut rows = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| invalid(path, format!("line {}: not a JSON object: {e}", i + 1)))?;
        for (k, v) in obj {
            let j = *index.entry(k.clone()).or_insert_with(|| {
                names.push(k.clone());
                cols.push(vec![None; rows]);
                cols.len() - 1
            });
            if cols[j].len() < rows + 1 {
                cols[j].resize(rows + 1, None);
            }
            cols[j][rows] = Some(v);
        }
        rows += 1;
        for c in cols.iter_mut() {
            c.resize(rows, None);
        }
    }
    let mut columns = Vec::with_capacity(cols.len());
    let mut notes = Vec::new();
    for (name, mut c) in names.iter().zip(cols) {
        // Missing-value markers written as strings ("NA", "null") are missing values.
        for v in c.iter_mut() {
            if matches!(v, Some(serde_json::Value::String(s)) if opts.is_na(s)) {
                *v = None;
            }
        }
        let all_numeric = c.iter().all(|v| {
            matches!(
                v,
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::Number(_))
            )
        });
        let numbers = c
            .iter()
            .filter(|v| matches!(v, Some(serde_json::Value::Number(_))))
            .count();
        let others: Vec<String> = c
            .iter()
            .flatten()
            .filter(|v| !v.is_number() && !v.is_null())
            .take(5)
            .map(|v| v.to_string())
            .collect();
        if !all_numeric && numbers > 0 {
            notes.push(format!(
                "column {name:?} is categorical: it mixes {numbers} numbers with other values (e.g. {}); use --na-values if they mean missing",
                others.join(", ")
            ));
        }
        if all_numeric {
            columns.push(RawColumn::Numbers(
                c.iter()
                    .map(|v| v.as_ref().and_then(|x| x.as_f64()).unwrap_or(f64::NAN))
                    .collect(),
            ));
        } else {
            let mut out = Labels::default();
            for v in c {
                match v {
                    None | Some(serde_json::Value::Null) => out.push(None),
                    Some(serde_json::Value::String(s)) => out.push(Some(&s)),
                    Some(serde_json::Value::Bool(b)) => out.push(Some(&b.to_string())),
                    Some(serde_json::Value::Number(n)) => out.push(Some(&n.to_string())),
                    Some(other) => {
                        return Err(invalid(
                            path,
                            format!("column {name:?}: nested value {other} is not supported"),
                        ))
                    }
                }
            }
            columns.push(RawColumn::Labels(out));
        }
    }
    Ok(Table {
        names,
        columns,
        notes,
    })
}

fn numbers_from(a: &ArrayRef, out: &mut Vec<f64>) -> Option<()> {
    macro_rules! prim {
        ($t:ty) => {{
            out.extend(
                a.as_primitive::<$t>()
                    .iter()
                    .map(|v| v.map(|x| x as f64).unwrap_or(f64::NAN)),
            );
            Some(())
        }};
    }
    match a.data_type() {
        DataType::Float64 => prim!(Float64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        _ => None,
    }
}

fn labels_from(a: &ArrayRef, out: &mut Labels) -> Option<()> {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().for_each(|v| out.push(v)),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().for_each(|v| out.push(v)),
        DataType::Boolean => a
            .as_boolean()
            .iter()
            .for_each(|v| out.push(v.map(|b| if b { "true" } else { "false" }))),
        DataType::Dictionary(_, _) => {
            let cast = arrow_cast_to_utf8(a)?;
            return labels_from(&cast, out);
        }
        _ => return None,
    }
    Some(())
}

fn arrow_cast_to_utf8(a: &ArrayRef) -> Option<ArrayRef> {
    arrow_cast::cast(a, &DataType::Utf8).ok()
}

fn read_parquet(path: &Path) -> Result<Table, DatasetError> {
    // The parquet crate has panicked on damaged files (57.3: an `unwrap` in its metadata decoder
    // found by tests/it/fuzz.rs, and its RLE decoder, found by fuzz/); 60 answers errors for
    // every input found so far. The guard stays: a damaged file must be a clear error, never a
    // panic, whatever the crate does next.
    std::panic::catch_unwind(|| read_parquet_unguarded(path)).unwrap_or_else(|_| {
        Err(invalid(
            path,
            "not a readable Parquet file: its metadata is damaged (the Parquet reader gave up)",
        ))
    })
}

fn read_parquet_unguarded(path: &Path) -> Result<Table, DatasetError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| invalid(path, format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| invalid(path, e.to_string()))?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut columns: Vec<RawColumn> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean | DataType::Dictionary(..) => {
                RawColumn::Labels(Labels::default())
            }
            _ => RawColumn::Numbers(Vec::new()),
        })
        .collect();
    for batch in reader {
        let batch = batch.map_err(|e| invalid(path, e.to_string()))?;
        for (j, col) in batch.columns().iter().enumerate() {
            let ok = match &mut columns[j] {
                RawColumn::Numbers(v) => numbers_from(col, v),
                RawColumn::Labels(v) => labels_from(col, v),
            };
            ok.ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "column {:?}: type {} is not supported",
                        names[j],
                        col.data_type()
                    ),
                )
            })?;
        }
    }
    Ok(Table {
        names,
        columns,
        notes: Vec::new(),
    })
}

/// Write a table as Parquet (numbers as Float64, labels as Utf8), for benchmarks and tests.
pub fn write_parquet(table: &Table, path: &Path) -> Result<(), DatasetError> {
    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;
    let fields: Vec<Field> = table
        .names
        .iter()
        .zip(&table.columns)
        .map(|(n, c)| match c {
            RawColumn::Numbers(_) => Field::new(n, DataType::Float64, true),
            RawColumn::Labels(_) => Field::new(n, DataType::Utf8, true),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = table
        .columns
        .iter()
        .map(|c| -> ArrayRef {
            match c {
                RawColumn::Numbers(v) => Arc::new(Float64Array::from(
                    v.iter()
                        .map(|x| x.is_finite().then_some(*x))
                        .collect::<Vec<_>>(),
                )),
                RawColumn::Labels(v) => Arc::new(StringArray::from(
                    (0..v.codes.len()).map(|i| v.get(i)).collect::<Vec<_>>(),
                )),
            }
        })
        .collect();
    let batch =
        RecordBatch::try_new(schema.clone(), arrays).map_err(|e| invalid(path, e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None)
        .map_err(|e| invalid(path, e.to_string()))?;
    w.write(&batch).map_err(|e| invalid(path, e.to_string()))?;
    w.close().map_err(|e| invalid(path, e.to_string()))?;
    Ok(())
}

impl From<crate::synth::SynthTable> for Table {
    fn from(t: crate::synth::SynthTable) -> Self {
        Table {
            names: t.names,
            columns: t
                .columns
                .into_iter()
                .map(|c| match c {
                    crate::synth::SynthColumn::Numeric(v) => {
                        RawColumn::Numbers(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
                    }
                    crate::synth::SynthColumn::Categorical(v) => {
                        // An empty string is a missing value, as an empty CSV cell is.
                        let mut l = Labels::default();
                        v.iter()
                            .for_each(|s| l.push((!s.is_empty()).then_some(s.as_str())));
                        RawColumn::Labels(l)
                    }
                })
                .collect(),
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str, opts: &ReadOptions) -> Table {
        read_bytes(text.as_bytes(), TextFormat::Csv, "t.csv", opts).expect("reads")
    }

    fn numbers(t: &Table, name: &str) -> Vec<f64> {
        match t.column(name) {
            Some(RawColumn::Numbers(v)) => v.clone(),
            other => panic!("{name} is not numeric: {other:?}"),
        }
    }

    #[test]
    fn the_usual_missing_markers_are_missing_not_text() {
        let t = csv(
            "price,city\n1.5,Berlin\nNA,Paris\nN/A,NA\nnull,Rome\nNaN,None\nNone,\n2.5,#N/A\n",
            &ReadOptions::default(),
        );
        let p = numbers(&t, "price");
        assert_eq!(p.len(), 7);
        assert_eq!(p.iter().filter(|x| x.is_nan()).count(), 5);
        assert_eq!((p[0], p[6]), (1.5, 2.5));
        let Some(RawColumn::Labels(city)) = t.column("city") else {
            panic!("city is text")
        };
        assert_eq!(
            city.counts().iter().sum::<u64>(),
            3,
            "NA, None, empty, #N/A are missing"
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        // Without the default markers, "NA" is text again (and the column says why it is not
        // numeric).
        let opts = ReadOptions {
            na_values: vec![String::new()],
            delimiter: None,
        };
        let t = csv("price\n1\n2\n3\nNA\n", &opts);
        assert!(matches!(t.column("price"), Some(RawColumn::Labels(_))));
        assert!(t.notes[0].contains("\"NA\""), "{:?}", t.notes);
        // An extra marker.
        let mut opts = ReadOptions::default();
        opts.na_values.push("-999".into());
        assert!(numbers(&csv("x\n1\n-999\n", &opts), "x")[1].is_nan());
    }

    #[test]
    fn the_delimiter_is_detected_or_given() {
        let t = csv("a;b;c\n1;2;x\n3;4;y\n", &ReadOptions::default());
        assert_eq!(t.names, ["a", "b", "c"]);
        assert_eq!(numbers(&t, "b"), [2.0, 4.0]);
        let t = csv("a\tb\n1\t2\n", &ReadOptions::default());
        assert_eq!(t.names, ["a", "b"]);
        // Quoted commas do not count; a given delimiter wins.
        assert_eq!(sniff_delimiter("\"x,y\";z"), b';');
        let opts = ReadOptions {
            delimiter: Some(b'|'),
            ..ReadOptions::default()
        };
        assert_eq!(csv("a|b\n1|2\n", &opts).names, ["a", "b"]);
        // A file that reads as one column with separators in its name says so.
        let opts = ReadOptions {
            delimiter: Some(b','),
            ..ReadOptions::default()
        };
        let t = csv("a;b\n1;2\n", &opts);
        assert!(t.notes[0].contains("--delimiter"), "{:?}", t.notes);
    }

    #[test]
    fn a_mostly_numeric_column_says_what_kept_it_categorical() {
        let t = csv(
            "amount\n1.5\n2\n12,5\n3\n4\nn.a.\n",
            &ReadOptions {
                delimiter: Some(b';'),
                ..ReadOptions::default()
            },
        );
        assert!(matches!(t.column("amount"), Some(RawColumn::Labels(_))));
        let note = &t.notes[0];
        assert!(
            note.contains("\"12,5\"") && note.contains("\"n.a.\"") && note.contains("2 of 6"),
            "{note}"
        );
        // NDJSON: marker strings are missing; other strings among numbers get a note.
        let t = read_bytes(
            b"{\"x\": 1, \"y\": 1}\n{\"x\": \"NA\", \"y\": \"n.a.\"}\n{\"x\": 2.5, \"y\": 2}\n",
            TextFormat::Ndjson,
            "t.ndjson",
            &ReadOptions::default(),
        )
        .expect("reads");
        assert_eq!(numbers(&t, "x").iter().filter(|v| v.is_nan()).count(), 1);
        assert!(
            t.notes
                .iter()
                .any(|n| n.contains("\"y\"") && n.contains("n.a.")),
            "{:?}",
            t.notes
        );
    }
}
