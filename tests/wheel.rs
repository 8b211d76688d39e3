//! `pip install django-orm-lsp` gives a working binary: builds the wheel with maturin (as pip
//! would through pyproject.toml's build backend), installs it into a fresh virtual environment
//! without an index, and runs the installed `django-orm-lsp check` on the demo project.
//! Skipped, saying why, when maturin or python3 is not installed (`.ci/run` installs maturin).
//!
//! maturin builds without `--release` here: the dev profile reuses the dependencies `cargo test`
//! has just compiled, so only this crate is rebuilt. Release wheels are built the same way with
//! `--release`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pip_installs_a_working_binary_from_the_wheel() {
    for program in ["maturin", "python3"] {
        if !available(program) {
            println!("skipped: `{program}` is not installed (pip install maturin)");
            return;
        }
    }
    let temp = common::temp::Dir::new();
    let dist = temp.path().join("dist");
    run(Command::new("maturin")
        .args(["build", "--quiet", "--out"])
        .arg(&dist)
        .current_dir(repo()));
    let wheels: Vec<PathBuf> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let name = wheels[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("django_orm_lsp-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let venv = temp.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheels[0]));
    let binary = venv.join("bin/django-orm-lsp");
    assert!(binary.is_file(), "{} not installed", binary.display());

    let version = run(Command::new(&binary).arg("--version"));
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("django-orm-lsp {}\n", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new(&binary)
        .args([
            "check",
            "tests/fixtures/demo_project",
            "--output-format",
            "json",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "findings exit 1");
    let findings: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(findings.len() >= 10, "{findings:?}");
    assert!(findings
        .iter()
        .any(|f| f["path"] == "tests/fixtures/demo_project/blog/views.py"
            && f["line"] == 21
            && f["code"] == "ORM101"));
}
