//! Test code and data migrations, told apart by their paths. Their findings are rarely worth
//! acting on (an `assertEqual(len(qs), 2)`, objects created one by one in `setUp`, a count on a
//! table that is empty when the migration runs), so they are reported differently: test code
//! not at all unless `include-tests` is on, migrations only for the rules `migrations` names.

use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Source,
    /// `test_*.py`, `*_test.py`, `tests.py`, `conftest.py`, or anything under a `tests/` or
    /// `test/` folder.
    Test,
    /// A module directly in a `migrations/` folder (and not test code).
    Migration,
}

/// The kind of the file at `path`, relative to the project root. Every folder on the path
/// counts, so only pass paths relative to the root: a project kept under some `tests/` folder
/// (a fixture, a checkout in `~/test/`) is not test code to itself.
pub fn kind_of(path: &Path) -> FileKind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_suffix(".py")
        .or_else(|| name.strip_suffix(".pyi"))
        .unwrap_or(name);
    let test_name = stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem == "tests"
        || stem == "conftest";
    let in_test_folder = path.parent().is_some_and(|folders| {
        folders
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "test")
    });
    if test_name || in_test_folder {
        return FileKind::Test;
    }
    let in_migrations = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|folder| folder == "migrations");
    if in_migrations {
        FileKind::Migration
    } else {
        FileKind::Source
    }
}

/// The kind of a file outside the project root, judged by its name and its folder's name only
/// (the folders above say nothing about the project the file belongs to).
pub fn kind_of_outside_root(path: &Path) -> FileKind {
    let name = path.file_name().map(Path::new).unwrap_or(path);
    let folder = path.parent().and_then(Path::file_name).map(Path::new);
    kind_of(&folder.map_or_else(|| name.to_path_buf(), |f| f.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_code_by_name_or_folder_then_migrations() {
        for (path, expected) in [
            ("app/tests.py", FileKind::Test),
            ("app/test_views.py", FileKind::Test),
            ("app/views_test.py", FileKind::Test),
            ("conftest.py", FileKind::Test),
            ("app/tests/factories.py", FileKind::Test),
            ("test/helpers/data.py", FileKind::Test),
            ("tests/migrations/0001_initial.py", FileKind::Test),
            ("app/migrations/0002_backfill.py", FileKind::Migration),
            ("app/migrations/helpers/x.py", FileKind::Source),
            ("app/views.py", FileKind::Source),
            ("app/testing.py", FileKind::Source),
            ("app/contest.py", FileKind::Source),
            ("app/latest_test_results/views.py", FileKind::Source),
            ("app/tests.html", FileKind::Source),
        ] {
            assert_eq!(kind_of(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn outside_the_root_only_the_name_and_its_folder_count() {
        let kind = |p: &str| kind_of_outside_root(Path::new(p));
        assert_eq!(kind("/src/tests/fixtures/blog/views.py"), FileKind::Source);
        assert_eq!(kind("/src/tests/fixtures/blog/tests.py"), FileKind::Test);
        assert_eq!(kind("/src/app/tests/factories.py"), FileKind::Test);
        assert_eq!(kind("/src/app/migrations/0001_x.py"), FileKind::Migration);
        assert_eq!(kind("views.py"), FileKind::Source);
    }
}
