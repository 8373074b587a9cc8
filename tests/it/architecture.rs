//! The direction of imports, as `docs/ARCHITECTURE.md` declares it: its layer table is read from
//! the document, and every `crate::<module>` path in `src/` must point at the same layer or a
//! lower one. A module missing from the table, or a table naming a module that does not exist,
//! fails too, so that the document and the code cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// module → layer, from the table between the `layers:begin` / `layers:end` markers.
fn layers() -> BTreeMap<String, u32> {
    let doc =
        std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = doc
        .find("<!-- layers:begin -->")
        .expect("layers:begin marker");
    let end = doc.find("<!-- layers:end -->").expect("layers:end marker");
    let mut out = BTreeMap::new();
    for line in doc[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | layer | modules | what |
        if cells.len() < 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        for m in cells[2].split(',') {
            let m = m.trim().trim_matches('`');
            if !m.is_empty() {
                assert!(
                    out.insert(m.to_owned(), layer).is_none(),
                    "{m} is listed twice"
                );
            }
        }
    }
    out
}

/// The top-level modules declared in `src/lib.rs`.
fn modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').trim().to_owned())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules a line refers to through `crate::` paths (`crate::a::b`, `crate::{a, b::c}`).
fn referenced(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group only: `{a::x, b::{c, d}}` → a, b.
            let (mut depth, mut at_start) = (0usize, true);
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            out.push(std::mem::take(&mut name));
                        }
                        at_start = true;
                    }
                    c if at_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ if at_start && !name.is_empty() => {
                        out.push(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn imports_point_down_the_documented_layers() {
    let layers = layers();
    let modules = modules();
    let listed: BTreeSet<String> = layers.keys().cloned().collect();
    assert_eq!(
        listed, modules,
        "the layer table of docs/ARCHITECTURE.md and the modules of src/lib.rs differ"
    );
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut edges = 0;
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(&from) = layers.get(&module) else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(&f).expect("source");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue; // prose may name any module
            }
            for target in referenced(code) {
                if target == module {
                    continue;
                }
                let Some(&to) = layers.get(&target) else {
                    continue; // an item of lib.rs, not a module
                };
                edges += 1;
                if to > from {
                    violations.push(format!(
                        "{}:{}: {module} (layer {from}) imports {target} (layer {to})",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        edges > 100,
        "the scan found only {edges} imports; is it reading src/?"
    );
    assert!(
        violations.is_empty(),
        "imports pointing up the layers of docs/ARCHITECTURE.md:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_and_groups() {
    assert_eq!(referenced("use crate::store::Store;"), ["store"]);
    assert_eq!(
        referenced("use crate::{clock::Clock, jobs, store::{A, B}};"),
        ["clock", "jobs", "store"]
    );
    assert_eq!(
        referenced("let x = crate::http::jobs::run(crate::app::x());"),
        ["http", "app"]
    );
}
