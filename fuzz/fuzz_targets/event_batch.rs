//! `POST /v1/events` bodies: both framings, then every element parsed and validated.
#![no_main]
use flywheel::events::batch::{parse_event, split_batch, Framing};
use flywheel::events::pseudonym::Pseudonymizer;
use flywheel::events::EventLimits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let limits = EventLimits::default();
    let p = Pseudonymizer::new(b"fuzz-key-0123456789abcdef0123456789");
    let now = 1_796_200_000_000_000;
    for framing in [Framing::Ndjson, Framing::JsonArray] {
        if let Ok(elems) = split_batch(body, framing, 1000) {
            assert!(elems.len() <= 1000, "more elements than the limit");
            for text in elems.into_iter().flatten() {
                let _ = parse_event(text, &limits, &p, now);
            }
        }
    }
});
