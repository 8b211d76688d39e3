//! The cached virtual environments with Django installed from PyPI that the tests running real
//! Django share (`.cache/execution/django-<label>`, git-ignored, reused by later runs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest supported LTS and the newest release, by cache label.
const DJANGO_VERSIONS: [(&str, &str); 2] = [("4.2", "Django==4.2.*"), ("newest", "Django")];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Django release installed in its cached environment.
pub struct Installed {
    /// The cache label (`DJANGO_VERSIONS`): `4.2`, `newest`.
    pub label: &'static str,
    pub requirement: &'static str,
    pub interpreter: PathBuf,
}

/// Each of `DJANGO_VERSIONS` installed, or `None` (with `skipped:` and the reason printed) when
/// python3 is missing or PyPI cannot provide one of them.
pub fn installed() -> Option<Vec<Installed>> {
    let python = python()?;
    let mut found = Vec::new();
    for (label, requirement) in DJANGO_VERSIONS {
        match environment(python, label, requirement) {
            Ok(interpreter) => found.push(Installed {
                label,
                requirement,
                interpreter,
            }),
            Err(reason) => {
                println!("skipped: cannot install {requirement} from PyPI: {reason}");
                return None;
            }
        }
    }
    Some(found)
}

/// The Python that creates the environments, or `None` (with `skipped:` and the reason
/// printed) when it is not installed.
fn python() -> Option<&'static str> {
    let python = "python3";
    let found = Command::new(python)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("skipped: `{python}` is not installed");
    }
    found.then_some(python)
}

/// The cached virtual environment with `requirement` installed, or why there is none.
fn environment(python: &str, label: &str, requirement: &str) -> Result<PathBuf, String> {
    let dir = repo()
        .join(".cache/execution")
        .join(format!("django-{label}"));
    let interpreter = dir.join("bin/python");
    let ready = dir.join("ready");
    if ready.is_file() && interpreter.is_file() {
        return Ok(interpreter);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let run = |command: &mut Command| -> Result<(), String> {
        let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{command:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    run(Command::new(python).args(["-m", "venv"]).arg(&dir))?;
    let installed = run(Command::new(&interpreter).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
        "djangorestframework",
    ]));
    if let Err(reason) = installed {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(reason);
    }
    std::fs::write(&ready, requirement).unwrap();
    Ok(interpreter)
}
