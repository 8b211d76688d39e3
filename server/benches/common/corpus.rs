//! The folder a corpus bench reads: the one given on the command line, else Django's sdist as
//! `scripts/corpus` fetches it into the git-ignored `.cache/corpus/`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn corpus() -> Option<PathBuf> {
    if let Some(folder) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        return Some(PathBuf::from(folder));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(repo.join("scripts/corpus")).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|folder| folder.contains("/django-5"))
        .map(PathBuf::from)
}
