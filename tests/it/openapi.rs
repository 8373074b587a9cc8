//! `docs/openapi.json` against the code and the documentation: every route the router
//! registers is described with its methods (and nothing else is), the served document is the
//! file, and the request examples of README.md and docs/EVENTS.md validate against its schemas.

use crate::helpers::spawn_app;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc() -> Value {
    serde_json::from_str(flywheel::http::OPENAPI).expect("docs/openapi.json is JSON")
}

/// (path, methods) of every `.route("PATH", get(..).post(..))` in `src/http/mod.rs`.
fn router_routes() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::fs::read_to_string(root().join("src/http/mod.rs")).expect("http/mod.rs");
    let mut out = BTreeMap::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let Some(close) = rest[open + 1..].find('"') else {
            break;
        };
        let path = rest[open + 1..open + 1 + close].to_owned();
        // The handler expression: up to the `)` closing `.route(`.
        let (mut depth, mut end) = (1i32, rest.len());
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let expr = &rest[..end];
        let mut methods = BTreeSet::new();
        for m in ["get", "post", "put", "delete", "patch"] {
            let plain = format!(" {m}(");
            let chained = format!(".{m}(");
            let first = format!(",{m}(");
            let squashed: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
            if squashed.contains(&plain)
                || squashed.contains(&chained)
                || squashed.replace(", ", ",").contains(&first)
            {
                methods.insert(m.to_owned());
            }
        }
        assert!(
            !methods.is_empty(),
            "route {path}: no method found in {expr:?}"
        );
        out.entry(path)
            .or_insert_with(BTreeSet::new)
            .extend(methods);
    }
    out
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = router_routes();
    assert!(routes.len() >= 20, "found only {routes:?}");
    let described: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(p, ops)| {
            (
                p.clone(),
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        routes, described,
        "the router (left) and docs/openapi.json (right) differ"
    );
    // Every operation says what it answers, and every $ref resolves.
    let text = doc.to_string();
    for (p, ops) in doc["paths"].as_object().expect("paths") {
        for (m, op) in ops.as_object().expect("ops") {
            assert!(op["summary"].is_string(), "{m} {p}: no summary");
            assert!(op["responses"]["200"].is_object(), "{m} {p}: no 200 answer");
        }
    }
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\"$ref\":\"#/") {
        rest = &rest[i + 10..];
        let end = rest.find('"').expect("end of ref");
        let pointer = &rest[..end];
        assert!(
            doc.pointer(&format!("/{pointer}")).is_some(),
            "dangling $ref #/{pointer}"
        );
    }
}

/// A validator for one schema of the document (refs resolve inside it).
fn validator(schema: &str) -> jsonschema::Validator {
    let mut root = doc();
    root["$ref"] = json!(format!("#/components/schemas/{schema}"));
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::validator_for(&root).expect("the schema compiles")
}

fn check(v: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate: {errors:?}\n{instance}"
    );
}

#[test]
fn the_documented_examples_validate_against_the_schemas() {
    let event = validator("Event");
    let answer = validator("IngestAnswer");
    // README: the request bodies of its curl examples (`'{...}'` lines), shell time filled in.
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let mut readme_examples = 0;
    for line in readme.lines() {
        let l = line.trim();
        if l.starts_with("'{") && l.ends_with("}'") {
            let body =
                l[1..l.len() - 1].replace("'\"$(date -u +%FT%TZ)\"'", "2026-12-04T10:00:00Z");
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            check(&event, &v, "a README request example");
            readme_examples += 1;
        }
    }
    assert!(
        readme_examples >= 1,
        "no request example found in README.md"
    );
    // docs/EVENTS.md: every ```json block is an event, except the answer.
    let events = std::fs::read_to_string(root().join("docs/EVENTS.md")).expect("EVENTS.md");
    let mut blocks = 0;
    for block in events.split("```json").skip(1) {
        let body = block.split("```").next().unwrap_or("");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        if v.get("accepted").is_some() {
            check(&answer, &v, "the ingest answer example");
        } else {
            check(&event, &v, "an EVENTS.md example");
        }
        blocks += 1;
    }
    assert!(blocks >= 6, "found {blocks} examples in docs/EVENTS.md");
    // The schema is not a rubber stamp: broken events fail it.
    for bad in [
        json!({"event_type": "interaction", "occurred_at": "2026-12-04T10:00:00Z", "model": {"id": "m"}}),
        json!({"event_id": "x", "event_type": "click", "occurred_at": "2026-12-04T10:00:00Z", "model": {"id": "m"}}),
        json!({"event_id": "x", "event_type": "feedback", "occurred_at": "2026-12-04T10:00:00Z", "model": {"id": "m"}, "kind": "loud", "signal": "s", "value": 1}),
        json!({"event_id": "x", "event_type": "interaction", "occurred_at": "2026-12-04T10:00:00Z", "model": {"id": "m"}, "prediction": {"confidence": 1.5}}),
    ] {
        assert!(!event.is_valid(&bad), "accepted {bad}");
    }
}

#[tokio::test]
async fn the_service_serves_the_document() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(r.status().as_u16(), 200);
    let served: Value = r.json().await.expect("json");
    assert_eq!(served, doc());
    // An unknown route says where the API is described.
    let (status, v) = app.get_json("/v1/nope").await;
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")));
    assert!(v["error"]
        .as_str()
        .is_some_and(|e| e.contains("/openapi.json")));
    app.stop().await;
}
