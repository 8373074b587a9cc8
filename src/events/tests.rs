use super::batch::parse_one;
use super::pseudonym::Pseudonymizer;
use super::raw::RawEvent;
use super::*;

fn pz() -> Pseudonymizer {
    Pseudonymizer::new(b"test-key-0123456789")
}

const NOW: i64 = 1_780_000_000_000_000; // 2026-05-28

fn check(json: &str) -> Result<Event, EventError> {
    let raw: RawEvent = parse_one(json)?;
    Event::try_from_raw(raw, &EventLimits::default(), &pz(), NOW)
}

fn ts(offset_secs: i64) -> String {
    chrono::DateTime::from_timestamp_micros(NOW + offset_secs * 1_000_000)
        .expect("valid")
        .to_rfc3339()
}

#[test]
fn a_valid_interaction_is_accepted_and_pseudonymised() {
    let e = check(&format!(
        r#"{{"event_id":"e1","event_type":"interaction","occurred_at":"{}","model":{{"id":"ranker","version":"v1"}},
            "user_id":"alice","features":{{"b":1.5,"a":"x","c":null,"d":true,"e":"NaN"}},
            "prediction":{{"score":0.3,"label":"yes","confidence":0.9}}}}"#,
        ts(0)
    ))
    .expect("valid");
    assert_eq!(e.user_key, Some(pz().key("alice")));
    let Body::Interaction { features, .. } = &e.body else {
        panic!("interaction expected")
    };
    let names: Vec<&str> = features.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert!(matches!(features[4].1, Value::Number(x) if x.is_nan()));
}

#[test]
fn analytics_consent_withheld_drops_the_user() {
    let e = check(&format!(
        r#"{{"event_id":"e1","event_type":"feedback","occurred_at":"{}","model":{{"id":"m"}},"user_id":"bob",
            "consent":{{"analytics":false}},"kind":"explicit","signal":"thumbs","value":1}}"#,
        ts(0)
    ))
    .expect("valid");
    assert_eq!(e.user_key, None);
}

#[test]
fn feedback_may_carry_segment_labels_other_records_may_not() {
    let e = check(&format!(
        r#"{{"event_id":"e1","event_type":"feedback","occurred_at":"{}","model":{{"id":"m"}},
            "kind":"explicit","signal":"thumbs","value":1,"segment":{{"country":"BR","plan":"free"}}}}"#,
        ts(0)
    ))
    .expect("valid");
    match e.body {
        Body::Feedback { segment, .. } => assert_eq!(
            segment,
            [
                ("country".to_owned(), "BR".to_owned()),
                ("plan".to_owned(), "free".to_owned())
            ]
        ),
        other => panic!("not feedback: {other:?}"),
    }
    let err = check(&format!(
        r#"{{"event_id":"d1","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}},
            "traffic_share":1,"segment":{{"country":"BR"}}}}"#,
        ts(0)
    ))
    .expect_err("segment on a deploy");
    assert!(
        err.message
            .contains("segment: not allowed on a deploy event"),
        "{}",
        err.message
    );
    let long = "x".repeat(300);
    let err = check(&format!(
        r#"{{"event_id":"e2","event_type":"feedback","occurred_at":"{}","model":{{"id":"m"}},
            "kind":"explicit","signal":"thumbs","value":1,"segment":{{"country":"{long}"}}}}"#,
        ts(0)
    ))
    .expect_err("a long segment value");
    assert!(err.message.contains("segment.country"), "{}", err.message);
}

#[test]
fn errors_name_the_field_and_the_problem() {
    let cases: Vec<(String, &str)> = vec![
        (r#"{"event_type":"deploy"}"#.into(), "event_id: missing"),
        (format!(r#"{{"event_id":"x","event_type":"click","occurred_at":"{}","model":{{"id":"m"}}}}"#, ts(0)), "event_type: unknown type"),
        (format!(r#"{{"event_id":"x","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}},"traffic_share":2}}"#, ts(0)), "traffic_share"),
        (format!(r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}}}}"#, ts(3600)), "in the future"),
        (r#"{"event_id":"x","event_type":"interaction","occurred_at":"yesterday","model":{"id":"m"}}"#.into(), "occurred_at"),
        (format!(r#"{{"event_id":"x","event_type":"feedback","occurred_at":"{}","model":{{"id":"m"}},"kind":"explicit","signal":"thumbs","value":"NaN"}}"#, ts(0)), "value: must be a finite number"),
        (format!(r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"features":{{"a":[1]}}}}"#, ts(0)), "features.a"),
        (format!(r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"colour":1}}"#, ts(0)), "unknown field `colour`"),
        (format!(r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"signal":"thumbs"}}"#, ts(0)), "signal: not allowed"),
        (format!(r#"{{"event_id":"{}","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}}}}"#, "x".repeat(200), ts(0)), "event_id: 200 bytes"),
        (format!(r#"{{"event_id":"x","event_type":"model_eval","occurred_at":"{}","model":{{"id":"m"}},"cycle":1,"eval_set":{{"id":"g"}},"metrics":[]}}"#, ts(0)), "metrics: at least one"),
        (format!(r#"{{"event_id":"x","event_type":"data_lifecycle","occurred_at":"{}","model":{{"id":"m"}},"stage":"eaten"}}"#, ts(0)), "stage: unknown stage"),
        (format!(r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"prediction":{{"score":"high"}}}}"#, ts(0)), "prediction.score: must be a number"),
    ];
    for (json, want) in cases {
        let e = check(&json).expect_err(&json);
        assert!(
            e.message.contains(want),
            "{json}\n→ {}\n(wanted {want:?})",
            e.message
        );
    }
}

#[test]
fn limits_are_enforced() {
    let many: Vec<String> = (0..300).map(|i| format!("\"f{i}\":{i}")).collect();
    let json = format!(
        r#"{{"event_id":"x","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"features":{{{}}}}}"#,
        ts(0),
        many.join(",")
    );
    let e = check(&json).expect_err("too many features");
    assert_eq!(e.reason, RejectReason::TooLarge);
    assert!(
        e.message.starts_with("features: 300 features"),
        "{}",
        e.message
    );
}

#[test]
fn batches_keep_good_elements_next_to_bad_ones() {
    let good = format!(
        r#"{{"event_id":"ok","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}}}}"#,
        ts(0)
    );
    let body = format!("{good}\n{{not json\n\n{good}\n");
    let items: Vec<_> = split_batch(body.as_bytes(), Framing::Ndjson, 10)
        .expect("splits")
        .into_iter()
        .map(|r| r.and_then(parse_one))
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_err() && items[2].is_ok());
    assert_eq!(
        split_batch(b"[1,", Framing::JsonArray, 10).map(|_| ()),
        Err(BatchError::NotAnArray(
            "EOF while parsing a value at line 1 column 3".into()
        ))
    );
    assert!(matches!(
        split_batch(b"\xff\xfe", Framing::JsonArray, 10),
        Err(BatchError::NotUtf8(0))
    ));
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    let items = split_batch(&bytes, Framing::Ndjson, 10).expect("splits");
    assert!(items[0].is_ok());
    let e = items[1].as_ref().expect_err("bad utf-8 line");
    assert!(e.message.contains("not valid UTF-8"), "{}", e.message);
    assert!(matches!(
        split_batch(b"[1,2,3]", Framing::JsonArray, 2),
        Err(BatchError::TooManyEvents(3, 2))
    ));
}

fn outcome(fields: &str) -> String {
    format!(
        r#"{{"event_id":"o","event_type":"outcome","occurred_at":"{}","model":{{"id":"m","version":"v"}},{fields}}}"#,
        ts(0)
    )
}

#[test]
fn an_outcome_carries_its_prediction_and_the_truth() {
    let e = check(&outcome(&format!(
        r#""interaction_id":"i-1","predicted_at":"{}","prediction":{{"score":0.8}},"actual":true"#,
        ts(-7200)
    )))
    .expect("valid binary outcome");
    match e.body {
        Body::Outcome {
            interaction_id,
            predicted_at_us,
            prediction,
            actual,
        } => {
            assert_eq!(interaction_id, "i-1");
            assert_eq!(e.occurred_at_us - predicted_at_us, 7_200_000_000);
            assert_eq!(prediction, 0.8);
            assert_eq!(actual, Actual::Binary(true));
        }
        other => panic!("not an outcome: {other:?}"),
    }
    let e = check(&outcome(&format!(
        r#""interaction_id":"i-2","predicted_at":"{}","prediction":{{"score":41.5}},"actual":40"#,
        ts(-60)
    )))
    .expect("valid regression outcome");
    assert!(matches!(
        e.body,
        Body::Outcome {
            actual: Actual::Value(y),
            ..
        } if y == 40.0
    ));
}

#[test]
fn outcome_errors_name_the_field_and_the_problem() {
    let at = ts(-60);
    let cases: Vec<(String, &str)> = vec![
        (
            outcome(&format!(
                r#""predicted_at":"{at}","prediction":{{"score":0.5}},"actual":true"#
            )),
            "interaction_id: missing",
        ),
        (
            outcome(r#""interaction_id":"i","prediction":{"score":0.5},"actual":true"#),
            "predicted_at: missing",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{}","prediction":{{"score":0.5}},"actual":true"#,
                ts(600)
            )),
            "predicted_at: ",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","actual":true"#
            )),
            "prediction: missing",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","prediction":{{"score":1.5}},"actual":false"#
            )),
            "prediction.score: 1.5 is outside [0, 1]",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","prediction":{{"score":0.5,"label":"x"}},"actual":false"#
            )),
            "only prediction.score",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","prediction":{{"score":0.5}},"actual":"yes""#
            )),
            "actual: must be a boolean",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","prediction":{{"score":0.5}}"#
            )),
            "actual: missing",
        ),
        (
            outcome(&format!(
                r#""interaction_id":"i","predicted_at":"{at}","prediction":{{"score":0.5}},"actual":true,"signal":"x""#
            )),
            "signal: not allowed on an outcome event",
        ),
        (
            format!(
                r#"{{"event_id":"x","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}},"actual":true}}"#,
                ts(0)
            ),
            "actual: not allowed on a deploy event",
        ),
    ];
    for (json, want) in cases {
        let e = check(&json).expect_err(&json);
        assert!(
            e.message.contains(want),
            "{json}\n→ {}\n(wanted {want:?})",
            e.message
        );
    }
}
