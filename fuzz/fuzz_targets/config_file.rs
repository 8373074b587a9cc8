//! The TOML config file (`--config`, `flywheel config check`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let _ = flywheel::config::check_text(&text, flywheel::config::Overrides::default());
});
