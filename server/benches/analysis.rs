//! Analysis throughput on generated Django code: full lint, and re-lint after a one-character
//! edit (the keystroke path without the protocol). Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench analysis

use std::time::{Duration, Instant};

use django_orm_lsp::analysis::{lint, lint_incremental, FileContext, LintCache};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::{parse_python, Document, PositionEncoding, TextChange, TextPosition};

#[path = "../../tests/common/synthetic.rs"]
mod synthetic;

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let settings = Settings::default();
    let file = FileContext::standalone();
    for (label, source) in [
        (
            "5,000 lines, 1 finding in 50 functions",
            synthetic::django_views(5_000, 50),
        ),
        (
            "5,000 lines, a finding in every function",
            synthetic::django_views(5_000, 1),
        ),
    ] {
        let start = Instant::now();
        let tree = parse_python(&source).unwrap();
        let parse = start.elapsed();
        // The first lint also compiles the rules' query; time the steady state.
        let mut found = lint(&source, &tree, &settings, &file);
        let start = Instant::now();
        for _ in 0..5 {
            found = lint(&source, &tree, &settings, &file);
        }
        let full = start.elapsed() / 5;
        println!(
            "{label}: parse {:.2} ms, full lint {:.2} ms, {} findings",
            parse.as_secs_f64() * 1e3,
            full.as_secs_f64() * 1e3,
            found.len()
        );

        let mut doc = Document::new(&source, 0);
        let mut cache = LintCache::default();
        let snapshot = doc.snapshot();
        lint_incremental(
            snapshot.text(),
            snapshot.tree().unwrap(),
            &settings,
            &file,
            &mut cache,
        );
        let line = (source.lines().count() / 2) as u32;
        let mut times = Vec::new();
        for i in 0..200u32 {
            let change = TextChange {
                range: Some((
                    TextPosition::new(line, 4 + i),
                    TextPosition::new(line, 4 + i),
                )),
                text: "x".into(),
            };
            let start = Instant::now();
            doc.apply_changes(&[change], i as i32 + 1, PositionEncoding::Utf16);
            let snapshot = doc.snapshot();
            lint_incremental(
                snapshot.text(),
                snapshot.tree().unwrap(),
                &settings,
                &file,
                &mut cache,
            );
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "  keystroke (edit + reparse + incremental lint, in a function body): p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 0.99)
        );
    }
}
