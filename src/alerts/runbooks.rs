//! The runbooks of every alert, embedded in the binary and served by the service at
//! `/runbooks/{alertname}` (rendered to HTML; `/runbooks` lists them), so that the
//! `runbook_url` of an alert opens on the deployment that raised it. The Markdown sources are
//! `alerts/runbooks/*.md`; a test keeps this list and that directory equal.

/// (alert name, Markdown), sorted by name.
pub const RUNBOOKS: &[(&str, &str)] = &[
    (
        "FlywheelAbsent",
        include_str!("../../alerts/runbooks/FlywheelAbsent.md"),
    ),
    (
        "FlywheelDataQualityFailed",
        include_str!("../../alerts/runbooks/FlywheelDataQualityFailed.md"),
    ),
    (
        "FlywheelDataQualityWarning",
        include_str!("../../alerts/runbooks/FlywheelDataQualityWarning.md"),
    ),
    (
        "FlywheelDatasetDrift",
        include_str!("../../alerts/runbooks/FlywheelDatasetDrift.md"),
    ),
    (
        "FlywheelEstimatedPerformanceDrop",
        include_str!("../../alerts/runbooks/FlywheelEstimatedPerformanceDrop.md"),
    ),
    (
        "FlywheelFeatureDrift",
        include_str!("../../alerts/runbooks/FlywheelFeatureDrift.md"),
    ),
    (
        "FlywheelFeedbackVolumeDrop",
        include_str!("../../alerts/runbooks/FlywheelFeedbackVolumeDrop.md"),
    ),
    (
        "FlywheelIngestRejectsHigh",
        include_str!("../../alerts/runbooks/FlywheelIngestRejectsHigh.md"),
    ),
    (
        "FlywheelInputStarved",
        include_str!("../../alerts/runbooks/FlywheelInputStarved.md"),
    ),
    (
        "FlywheelLearningPlateau",
        include_str!("../../alerts/runbooks/FlywheelLearningPlateau.md"),
    ),
    (
        "FlywheelLearningRegressing",
        include_str!("../../alerts/runbooks/FlywheelLearningRegressing.md"),
    ),
    (
        "FlywheelModelPerformanceDrop",
        include_str!("../../alerts/runbooks/FlywheelModelPerformanceDrop.md"),
    ),
    (
        "FlywheelMultivariateDrift",
        include_str!("../../alerts/runbooks/FlywheelMultivariateDrift.md"),
    ),
    (
        "FlywheelOutputStalled",
        include_str!("../../alerts/runbooks/FlywheelOutputStalled.md"),
    ),
    (
        "FlywheelRetentionDrop",
        include_str!("../../alerts/runbooks/FlywheelRetentionDrop.md"),
    ),
    (
        "FlywheelTaskStale",
        include_str!("../../alerts/runbooks/FlywheelTaskStale.md"),
    ),
    (
        "FlywheelTrainingConsentViolation",
        include_str!("../../alerts/runbooks/FlywheelTrainingConsentViolation.md"),
    ),
];

/// The Markdown of one alert's runbook.
pub fn markdown(alertname: &str) -> Option<&'static str> {
    RUNBOOKS
        .iter()
        .find(|(n, _)| *n == alertname)
        .map(|(_, md)| *md)
}

/// The link to a runbook on the service at `base` (its external URL).
pub fn url(base: &str, alertname: &str) -> String {
    format!("{}/runbooks/{alertname}", base.trim_end_matches('/'))
}

/// One runbook as an HTML page. `http://FLYWHEEL` in the text (the placeholder for the service's
/// address in example commands) becomes `base`, so commands can be copied as they are.
pub fn html(alertname: &str, base: &str) -> Option<String> {
    let md = markdown(alertname)?.replace("http://FLYWHEEL", base.trim_end_matches('/'));
    let mut body = String::new();
    pulldown_cmark::html::push_html(
        &mut body,
        pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES),
    );
    Some(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{alertname} runbook</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         code,pre{{background:#f3f3f3}}pre{{padding:.6rem;overflow-x:auto}}</style></head>\
         <body>\n<p><a href=\"/runbooks\">All runbooks</a> · <a href=\"/v1/alerts\">Alerts</a> · <a href=\"/\">Status</a></p>\n{body}</body></html>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runbook_file_is_embedded_and_renders() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/runbooks");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("alerts/runbooks")
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".md").map(str::to_owned)
            })
            .collect();
        files.sort();
        let embedded: Vec<String> = RUNBOOKS.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(embedded, files, "alerts/runbooks and RUNBOOKS differ");
        for (name, _) in RUNBOOKS {
            let page = html(name, "http://flywheel.example:8080").expect("renders");
            assert!(page.contains(&format!("<h1>{name}</h1>")), "{name}");
            assert!(
                !page.contains("http://FLYWHEEL"),
                "{name}: placeholder left"
            );
        }
        assert!(html("NoSuchAlert", "x").is_none());
        assert_eq!(url("http://a:1/", "X"), "http://a:1/runbooks/X");
    }
}
