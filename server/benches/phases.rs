//! Where a cold `check` spends its time, phase by phase, on one thread so the phases add up:
//! building the model index, parsing each file, the rules' pattern walks alone (no rule runs),
//! and the whole lint. On Django's sdist (fetched by `scripts/corpus`), or on the folder given.
//! Prints figures; asserts nothing.
//!
//!     cargo bench --bench phases [-- FOLDER]

#[path = "common/corpus.rs"]
mod corpus;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use django_orm_lsp::analysis::rules::REGISTRY;
use django_orm_lsp::analysis::{lint, prepare};
use django_orm_lsp::files::source_files;
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let Some(corpus) = corpus::corpus() else {
        println!("skipped: scripts/corpus did not provide Django's sdist");
        return;
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the first pool");
    prepare();
    let files = source_files(&corpus);
    let start = Instant::now();
    let workspace = Workspace::from_paths(std::slice::from_ref(&corpus), &files.python, |_, _| {})
        .with_templates(&files.python, &files.templates);
    let index = start.elapsed();
    let sources: Vec<(PathBuf, String)> = files
        .python
        .iter()
        .filter_map(|f| Some((f.clone(), std::fs::read_to_string(f).ok()?)))
        .collect();
    let settings = Settings::default();

    let (mut parse, mut main_walk, mut loop_walk, mut linting) = Default::default();
    let (mut matches, mut loops, mut findings) = (0usize, 0usize, 0usize);
    for (path, source) in &sources {
        let started = Instant::now();
        let Some(tree) = parse_python(source) else {
            continue;
        };
        parse += started.elapsed();

        let started = Instant::now();
        let mut outermost: Vec<tree_sitter::Node> = Vec::new();
        REGISTRY
            .patterns
            .for_each_match(tree.root_node(), source, None, |pattern, bound| {
                matches += 1;
                if REGISTRY.rule_for_pattern(pattern).is_none() {
                    outermost.push(bound[0].1);
                }
            });
        main_walk += started.elapsed();
        let started = Instant::now();
        outermost.dedup_by(|inner, outer| inner.start_byte() < outer.end_byte());
        for node in outermost {
            REGISTRY
                .loop_patterns
                .for_each_match(node, source, None, |_, _| loops += 1);
        }
        loop_walk += started.elapsed();

        let started = Instant::now();
        let context = workspace.context_for(path);
        findings += lint(source, &tree, &settings, &context).len();
        linting += started.elapsed();
    }
    let total = index + parse + linting;
    let share = |d: Duration| 100.0 * seconds(d) / seconds(total);
    println!(
        "phases on {} ({} files, one thread): index {:.2} s ({:.0}%), parse {:.2} s ({:.0}%), \
         lint {:.2} s ({:.0}%) of which the pattern walks {:.2} s + {:.2} s in loops \
         ({} + {} matches); {} findings",
        corpus.display(),
        sources.len(),
        seconds(index),
        share(index),
        seconds(parse),
        share(parse),
        seconds(linting),
        share(linting),
        seconds(main_walk),
        seconds(loop_walk),
        matches,
        loops,
        findings,
    );
}
