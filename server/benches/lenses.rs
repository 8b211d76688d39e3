//! What a code-lens request and a hover cost in the analysis (the protocol adds little): on the
//! 20 largest files of Django's sdist (fetched by `scripts/corpus`), or of the folder given, the
//! lenses of each whole file, and a hover on every `objects` of the largest one (its type and
//! SQL); each file linted first, as the editor has by then. Prints figures; asserts nothing.
//!
//!     cargo bench --bench lenses [-- FOLDER]

#[path = "common/corpus.rs"]
mod corpus;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use django_orm_lsp::analysis::hover::hover_at;
use django_orm_lsp::analysis::lint;
use django_orm_lsp::analysis::query_counts::query_counts;
use django_orm_lsp::files::source_files;
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;

fn milliseconds(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (n={})",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    )
}

fn main() {
    let Some(corpus) = corpus::corpus() else {
        println!("skipped: scripts/corpus did not provide Django's sdist");
        return;
    };
    let files = source_files(&corpus);
    let workspace = Workspace::from_paths(std::slice::from_ref(&corpus), &files.python, |_, _| {});
    let mut largest: Vec<(PathBuf, String)> = files
        .python
        .iter()
        .filter_map(|f| Some((f.clone(), std::fs::read_to_string(f).ok()?)))
        .collect();
    largest.sort_by_key(|(_, source)| std::cmp::Reverse(source.len()));
    largest.truncate(20);
    let settings = Settings::default();

    let (mut lens_times, mut lenses) = (Vec::new(), 0);
    for (path, source) in &largest {
        let tree = parse_python(source).unwrap();
        let file = workspace.context_for(path);
        // As in the editor, the file was linted first: the summaries of the other modules it
        // calls are built.
        lint(source, &tree, &settings, &file);
        let started = Instant::now();
        lenses += query_counts(source, &tree, &file).len();
        lens_times.push(started.elapsed());
    }
    println!(
        "code lenses of a whole file, the 20 largest ({} to {} KiB): {}, {lenses} lenses",
        largest.last().unwrap().1.len() / 1024,
        largest[0].1.len() / 1024,
        milliseconds(lens_times)
    );

    let (path, source) = &largest[0];
    let tree = parse_python(source).unwrap();
    let file = workspace.context_for(path);
    lint(source, &tree, &settings, &file);
    let mut hover_times = Vec::new();
    let mut with_sql = 0;
    for (offset, _) in source.match_indices(".objects") {
        let started = Instant::now();
        let shown = hover_at(source, &tree, &file, offset + 1, &settings);
        hover_times.push(started.elapsed());
        with_sql += shown.is_some_and(|(_, text)| text.contains("```sql")) as usize;
    }
    println!(
        "hover on each `objects` of {} ({with_sql} with SQL): {}",
        path.strip_prefix(&corpus).unwrap_or(path).display(),
        milliseconds(hover_times)
    );
}
