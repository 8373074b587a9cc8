//! Parquet datasets (`flywheel compare`, baselines from files). A panic inside the parquet
//! crate on a damaged file must come back as an error, never abort the process.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(|bytes: &[u8]| {
    let path = dir().path().join("input.parquet");
    std::fs::write(&path, bytes).expect("write the input");
    let _ = flywheel::dataset::read(&path, &flywheel::dataset::ReadOptions::default());
});
