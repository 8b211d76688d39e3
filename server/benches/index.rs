//! Model index build time and memory: the demo project, and Django's own source distribution
//! (with its test suite) fetched by `scripts/corpus` into `.cache/corpus/`. Prints figures.
//!
//!     cargo bench --bench index

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use django_orm_lsp::workspace::Workspace;

/// Resident and peak resident memory of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn measure(label: &str, root: &Path) {
    let (before, _) = memory_mb();
    let started = Instant::now();
    let workspace = Workspace::scan(root, |_, _| {});
    let elapsed = started.elapsed();
    let (after, peak) = memory_mb();
    let index = workspace.index();
    println!(
        "index {label}: {} models in {:.0} ms; RSS {:.1} MB -> {:.1} MB (peak {:.1} MB)",
        index.models().len(),
        elapsed.as_secs_f64() * 1e3,
        before,
        after,
        peak
    );
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    measure("demo project", &repo.join("tests/fixtures/demo_project"));
    let corpus = Command::new(repo.join("scripts/corpus")).output();
    match corpus {
        Ok(out) if out.status.success() => {
            for folder in String::from_utf8_lossy(&out.stdout).lines() {
                let name = Path::new(folder)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                measure(&name, Path::new(folder));
            }
        }
        Ok(out) => println!(
            "skipped the corpus: scripts/corpus failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("skipped the corpus: cannot run scripts/corpus: {e}"),
    }
}
