//! Reading a dataset for `flywheel compare`: CSV with a header row (an empty cell is missing),
//! NDJSON (one object per line), or Parquet, chosen by the file extension. Columns are typed
//! here: numbers (with missing), or text/boolean values (with missing).

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

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<RawColumn>,
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
pub fn read(path: &Path) -> Result<Table, DatasetError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path),
        "ndjson" | "jsonl" | "json" => read_ndjson(path),
        "parquet" | "pq" => read_parquet(path),
        _ => Err(DatasetError::UnknownFormat {
            path: path.display().to_string(),
        }),
    }
}

fn parse_number(s: &str) -> Option<Option<f64>> {
    let t = s.trim();
    if t.is_empty() {
        return Some(None);
    }
    t.parse::<f64>().ok().map(|x| x.is_finite().then_some(x))
}

/// Type text cells: numeric when every non-empty cell parses as a number, else labels.
fn type_cells(cells: Vec<Option<String>>) -> RawColumn {
    let numeric = cells
        .iter()
        .all(|c| c.as_deref().is_none_or(|s| parse_number(s).is_some()));
    if numeric {
        RawColumn::Numbers(
            cells
                .iter()
                .map(|c| {
                    c.as_deref()
                        .and_then(|s| parse_number(s).flatten())
                        .unwrap_or(f64::NAN)
                })
                .collect(),
        )
    } else {
        let mut l = Labels::default();
        for c in &cells {
            l.push(c.as_deref());
        }
        RawColumn::Labels(l)
    }
}

/// The text formats a dataset can be sent in over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Csv,
    Ndjson,
}

/// Read a dataset from bytes (an upload); `label` names it in errors.
pub fn read_bytes(bytes: &[u8], format: TextFormat, label: &str) -> Result<Table, DatasetError> {
    let path = Path::new(label);
    match format {
        TextFormat::Csv => csv_from_reader(bytes, path),
        TextFormat::Ndjson => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| invalid(path, format!("not UTF-8 text: {e}")))?;
            ndjson_from_text(text, path)
        }
    }
}

fn read_csv(path: &Path) -> Result<Table, DatasetError> {
    let f = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    csv_from_reader(std::io::BufReader::new(f), path)
}

fn csv_from_reader(r: impl std::io::Read, path: &Path) -> Result<Table, DatasetError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(r);
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
                    "row {}: {} cells, the header has {}",
                    i + 2,
                    rec.len(),
                    names.len()
                ),
            ));
        }
        for (j, cell) in rec.iter().enumerate() {
            cells[j].push((!cell.is_empty()).then(|| cell.to_owned()));
        }
    }
    Ok(Table {
        names,
        columns: cells.into_iter().map(type_cells).collect(),
    })
}

fn read_ndjson(path: &Path) -> Result<Table, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.display().to_string(),
        source,
    })?;
    ndjson_from_text(&text, path)
}

fn ndjson_from_text(text: &str, path: &Path) -> Result<Table, DatasetError> {
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
    for (name, c) in names.iter().zip(cols) {
        let all_numeric = c.iter().all(|v| {
            matches!(
                v,
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::Number(_))
            )
        });
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
    Ok(Table { names, columns })
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
    Ok(Table { names, columns })
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
                        v.iter().for_each(|s| l.push((!s.is_empty()).then_some(s.as_str())));
                        RawColumn::Labels(l)
                    }
                })
                .collect(),
        }
    }
}
