//! The floor under a cold `check`: reading and parsing every Python file of Django's sdist
//! (fetched by `scripts/corpus`) with tree-sitter on every core, and nothing else. No rule runs
//! here, so a cold `check` of the same tree cannot be faster unless it skips files. Prints
//! figures (best of three runs).
//!
//!     cargo bench --bench floor

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rayon::prelude::*;

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            python_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

fn best_of_three(run: impl Fn()) -> Duration {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = match Command::new(repo.join("scripts/corpus")).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|folder| folder.contains("/django-5"))
            .map(PathBuf::from),
        _ => None,
    };
    let Some(corpus) = corpus else {
        println!("skipped: scripts/corpus did not provide Django's sdist");
        return;
    };
    let mut files = Vec::new();
    python_files(&corpus, &mut files);
    let sources: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let bytes: usize = sources.iter().map(String::len).sum();
    let read = best_of_three(|| {
        files.par_iter().for_each(|f| {
            std::hint::black_box(std::fs::read_to_string(f).ok());
        })
    });
    let parse = best_of_three(|| {
        sources.par_iter().for_each(|s| {
            std::hint::black_box(django_orm_lsp::store::parse_python(s));
        })
    });
    println!(
        "floor on {}: {} files, {:.1} MB; read {:.2} s, tree-sitter parse {:.2} s on {} threads",
        corpus.file_name().unwrap().to_string_lossy(),
        sources.len(),
        bytes as f64 / 1e6,
        read.as_secs_f64(),
        parse.as_secs_f64(),
        rayon::current_num_threads()
    );
}
