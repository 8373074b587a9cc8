//! Parquet datasets (`flywheel compare`, baselines from files). A panic inside the parquet
//! crate on a damaged file must come back as an error, never abort the process.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(init: {
    // libfuzzer-sys installs a panic hook that aborts on any panic, even one the code under
    // test catches. flywheel catches the parquet crate's panics on damaged files
    // (`dataset::read_parquet`) and answers an error, so a caught panic is not a crash here.
    // The default hook is put back; a panic that escapes still aborts, because libfuzzer-sys
    // also checks whether the target unwound.
    let _ = std::panic::take_hook();
}, |bytes: &[u8]| {
    let path = dir().path().join("input.parquet");
    std::fs::write(&path, bytes).expect("write the input");
    let _ = flywheel::dataset::read(&path, &flywheel::dataset::ReadOptions::default());
});
