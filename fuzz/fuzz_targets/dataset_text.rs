//! Reference datasets uploaded as CSV or NDJSON (`POST /v1/baselines`, `flywheel compare`).
#![no_main]
use flywheel::dataset::{read_bytes, ReadOptions, TextFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for format in [TextFormat::Csv, TextFormat::Ndjson] {
        let _ = read_bytes(bytes, format, "upload", &ReadOptions::default());
    }
});
