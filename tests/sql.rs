//! SQL on hover, compared with real Django: every expression statement of the corpus module
//! `tests/fixtures/sql/library/corpus.py` is a QuerySet over the fixture models (custom
//! `db_table` and `db_column`, an explicit primary key, nullable keys, many-to-manys (one with
//! its own `db_table`), a one-to-one to a non-primary key, a key to its own model, an unmanaged
//! model, `Meta.ordering` across a relation). For each, the SQL the analysis renders is compared with what Django's
//! `str(qs.query)` prints (`tests/sql/print_sql.py`), on the oldest supported LTS and the newest
//! release, with SQLite's compiler and, where their drivers install, PostgreSQL's (`psycopg`),
//! MySQL's (`pymysql`, standing in for `mysqlclient`) and Oracle's (`oracledb`). `str()` needs no
//! server: what the MySQL and Oracle backends would ask one is stated by the script instead
//! (MySQL 8.0.36 in its default SQL mode, Oracle 19 and the LIKE operators it accepts). The test
//! prints the share equal and every difference per dialect, and fails below `THRESHOLD`. An
//! expression the analysis declines to render counts as a difference.
//!
//! Django comes from the virtual environments `tests/execution.rs` caches under
//! `.cache/execution/`; without python3 or PyPI the test prints `skipped: <reason>` and passes.
//! The dialect hover renders for (the settings' `ENGINE`, else the `sql-dialect` setting) is
//! checked on scratch projects, and over LSP.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use django_orm_lsp::analysis::hover::sql::{Dialect, Release, Target};
use django_orm_lsp::analysis::hover::{fix_sql, sql_of_ranges};
use django_orm_lsp::analysis::{lint, FileContext};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;
use serde_json::json;
use tree_sitter::Tree;

use common::django_env::Installed;
use common::hover::{in_dialect, shown_at};

/// The share of the corpus whose SQL must equal Django's, per Django version and dialect.
const THRESHOLD: f64 = 0.95;

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sql")
}

/// A module of the fixture project, parsed, with its place in the scanned project.
fn analysed(name: &str) -> (String, Tree, FileContext) {
    let root = project();
    let workspace = Workspace::scan(&root, |_, _| {});
    let path = root.join("library").join(name);
    let source = std::fs::read_to_string(&path).unwrap();
    let tree = parse_python(&source).unwrap();
    (source, tree, workspace.context_for(&path))
}

/// What hover renders for each expression statement of the corpus, by 1-based line.
fn rendered(target: Target) -> BTreeMap<usize, Result<String, String>> {
    let (source, tree, file) = analysed("corpus.py");
    let mut cursor = tree.root_node().walk();
    let statements: Vec<_> = tree
        .root_node()
        .named_children(&mut cursor)
        .filter(|s| s.kind() == "expression_statement")
        .collect();
    let ranges: Vec<_> = statements
        .iter()
        .map(|s| s.named_child(0).unwrap().byte_range())
        .collect();
    let sqls = sql_of_ranges(&source, &tree, &file, &ranges, target);
    statements
        .iter()
        .zip(sqls)
        .map(|(statement, sql)| {
            let sql = sql.unwrap_or_else(|| Err("not a QuerySet of a known model".into()));
            (statement.start_position().row + 1, sql)
        })
        .collect()
}

/// What Django prints for each expression statement, by line; `Err` when Django cannot run
/// with this dialect here.
fn printed(interpreter: &Path, dialect: &str) -> Result<BTreeMap<usize, String>, String> {
    let root = project();
    let output = Command::new(interpreter)
        .arg(root.join("../../sql/print_sql.py"))
        .arg(&root)
        .arg(root.join("library/corpus.py"))
        .arg(dialect)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let by_line: BTreeMap<String, String> = serde_json::from_slice(&output.stdout).unwrap();
    Ok(by_line
        .into_iter()
        .map(|(line, sql)| (line.parse().unwrap(), sql))
        .collect())
}

/// Compares one version and dialect; returns the share equal and prints the differences.
fn compare(label: &str, dialect: Dialect, django: &BTreeMap<usize, String>) -> f64 {
    let release = if label == "4.2" {
        Release::Before5_2
    } else {
        Release::Since5_2
    };
    let ours = rendered(Target { dialect, release });
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        django.keys().collect::<Vec<_>>(),
        "the analysis and Django see the same expression statements"
    );
    let mut equal = 0;
    for (line, expected) in django {
        match &ours[line] {
            Ok(sql) if sql == expected => equal += 1,
            Ok(sql) => println!("line {line}:\n  django: {expected}\n  hover:  {sql}"),
            Err(reason) => println!("line {line}: not rendered ({reason})\n  django: {expected}"),
        }
    }
    let share = equal as f64 / django.len() as f64;
    println!(
        "Django {label}, {}: {equal} of {} equal ({:.1}%)",
        dialect.name(),
        django.len(),
        share * 100.0
    );
    share
}

#[test]
fn hover_sql_equals_djangos() {
    let Some(installed) = common::django_env::installed() else {
        return;
    };
    let mut shares = Vec::new();
    for Installed {
        label, interpreter, ..
    } in installed
    {
        let sqlite = printed(&interpreter, "sqlite").expect("Django prints SQLite's SQL");
        shares.push((
            label,
            Dialect::Sqlite,
            compare(label, Dialect::Sqlite, &sqlite),
        ));
        for (dialect, setting, module, requirement) in DRIVEN {
            match driver(&interpreter, module, requirement)
                .and_then(|()| printed(&interpreter, setting))
            {
                Ok(django) => shares.push((label, dialect, compare(label, dialect, &django))),
                Err(reason) => println!("skipped {} on Django {label}: {reason}", dialect.name()),
            }
        }
    }
    for (label, dialect, share) in shares {
        assert!(
            share >= THRESHOLD,
            "Django {label}, {}: {:.1}% equal, below {:.0}% (differences above)",
            dialect.name(),
            share * 100.0,
            THRESHOLD * 100.0
        );
    }
}

/// The dialects whose compiler imports a driver: (dialect, `print_sql.py`'s name for it, the
/// module imported, the requirement that installs it).
const DRIVEN: [(Dialect, &str, &str, &str); 3] = [
    (
        Dialect::Postgresql,
        "postgresql",
        "psycopg",
        "psycopg[binary]",
    ),
    (Dialect::Mysql, "mysql", "pymysql", "pymysql"),
    (Dialect::Oracle, "oracle", "oracledb", "oracledb"),
];

/// A backend's driver (`module`), installed from `requirement` into the cached environment when
/// missing (the execution harness, which runs on SQLite, does not mind it).
fn driver(interpreter: &Path, module: &str, requirement: &str) -> Result<(), String> {
    let imports = |interpreter: &Path| {
        Command::new(interpreter)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if imports(interpreter) {
        return Ok(());
    }
    let output = Command::new(interpreter)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(requirement)
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() && imports(interpreter) {
        Ok(())
    } else {
        Err(format!(
            "the {module} driver does not install: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// What hover shows (type, then SQL or why not) on the name of `method` in the first line of
/// `library/hovers.py` that holds `fragment`.
fn hover_on(fragment: &str, method: &str) -> String {
    let (source, tree, file) = analysed("hovers.py");
    let line = source.find(fragment).expect("the fragment is in hovers.py");
    let line = source[..line].rfind('\n').map_or(0, |n| n + 1);
    let offset = line
        + source[line..]
            .find(method)
            .expect("the method is on the line");
    shown_at(&source, &tree, &file, offset, Dialect::Postgresql)
}

#[test]
fn hover_shows_sql_below_the_type_or_why_not() {
    assert_eq!(
        hover_on("books = ", "filter"),
        "```text\nQuerySet[library.Book]\n```\n```sql\nSELECT \"library_book\".\"id\", \
         \"library_book\".\"title\", \"library_book\".\"author_id\", \"library_book\".\"editor_id\", \
         \"library_book\".\"press\", \"library_book\".\"pages\", \"library_book\".\"rating\", \
         \"library_book\".\"in_print\" FROM \"library_book\" WHERE \"library_book\".\"rating\" = %s \
         ORDER BY \"library_book\".\"rating\" DESC, \"library_book\".\"title\" ASC\n```\n\
         *SQL as Django 5.2 prints it for PostgreSQL*",
        "a value not known statically is a placeholder"
    );
    let declined = [
        (
            "Q(title",
            "filter",
            "`Q` objects combined with `^` are not rendered yet",
        ),
        (
            "editor__books",
            "exclude",
            "`exclude()` through a nullable key to a to-many relation is not rendered yet",
        ),
        (
            "pages__regex",
            "filter",
            "the lookup `regex` is not rendered yet",
        ),
        (
            "50%",
            "filter",
            "a pattern with `%`, `_` or `\\` is not rendered yet",
        ),
        (
            "annotate",
            "annotate",
            "`Count(filter=...)` is not rendered yet",
        ),
        (
            "icontains=rating",
            "exclude",
            "a pattern not known statically is not rendered yet",
        ),
        (
            "F(\"rating\")",
            "filter",
            "the expression `F(\"rating\")` is not rendered yet",
        ),
        (
            "[rating, 3]",
            "filter",
            "`in` a list of values not known statically",
        ),
        (
            "order_by(\"tags\")",
            "order_by",
            "ordering by `tags` is not rendered yet",
        ),
        (
            "ordered = books",
            "order_by",
            "the QuerySet is not built by one assignment in this scope (SQL is shown on its chain)",
        ),
        (
            "return ordered",
            "ordered",
            "the QuerySet is not built by one assignment in this scope (SQL is shown on its chain)",
        ),
    ];
    for (fragment, method, reason) in declined {
        let shown = hover_on(fragment, method);
        assert!(
            shown.starts_with("```text\nQuerySet[library.Book]")
                && shown.ends_with(&format!("\n*SQL not shown: {reason}*")),
            "`{method}` on the line of `{fragment}`: {shown}"
        );
    }
    assert!(
        hover_on("return books", "books").ends_with(
            "WHERE \"library_book\".\"rating\" = %s ORDER BY \"library_book\".\"id\" ASC\n```\n\
             *SQL as Django 5.2 prints it for PostgreSQL*"
        ),
        "a name is followed to the assignments that built it"
    );
    assert_eq!(
        hover_on("return books", "return"),
        "",
        "no hover off an identifier"
    );
    assert_eq!(
        hover_on("books = ", "Book"),
        "```text\ntype[library.Book]\n```",
        "no SQL for a model class"
    );
}

const MODELS: &str = "from django.db import models\n\n\nclass Book(models.Model):\n    title = models.CharField(max_length=200)\n";
const VIEWS: &str =
    "from shop.models import Book\n\nBook.objects.filter(title__icontains=\"war\")\n";

/// What hover shows on `filter` in `VIEWS`, in a project holding `settings` files (path,
/// content), with `dialect` as the `sql-dialect` setting.
fn hover_in_project(settings: &[(&str, &str)], dialect: Dialect) -> String {
    let mut files: Vec<(&str, &[u8])> = vec![
        ("shop/models.py", MODELS.as_bytes()),
        ("shop/views.py", VIEWS.as_bytes()),
    ];
    files.extend(settings.iter().map(|(path, text)| (*path, text.as_bytes())));
    let project = common::temp::project(&files);
    let workspace = Workspace::scan(project.path(), |_, _| {});
    let tree = parse_python(VIEWS).unwrap();
    let file = workspace.context_for(&project.path().join("shop/views.py"));
    let offset = VIEWS.find("filter").unwrap();
    shown_at(VIEWS, &tree, &file, offset, dialect)
}

const SQLITE_ICONTAINS: &str = "WHERE \"shop_book\".\"title\" LIKE %war% ESCAPE '\\'\n```\n\
                                *SQL as Django 5.2 prints it for SQLite*";
const POSTGRESQL_ICONTAINS: &str =
    "WHERE UPPER(\"shop_book\".\"title\"::text) LIKE UPPER(%war%)\n```\n\
                                    *SQL as Django 5.2 prints it for PostgreSQL*";

fn databases(engine: &str) -> String {
    format!("DATABASES = {{\"default\": {{\"ENGINE\": \"{engine}\", \"NAME\": \"db\"}}}}\n")
}

#[test]
fn the_settings_engine_chooses_the_dialect_else_the_setting() {
    let sqlite = databases("django.db.backends.sqlite3");
    let shown = hover_in_project(&[("proj/settings.py", &sqlite)], Dialect::Postgresql);
    assert!(shown.ends_with(SQLITE_ICONTAINS), "sqlite3 ENGINE: {shown}");
    let postgresql = databases("django.db.backends.postgresql");
    let shown = hover_in_project(&[("proj/settings/base.py", &postgresql)], Dialect::Sqlite);
    assert!(
        shown.ends_with(POSTGRESQL_ICONTAINS),
        "postgresql ENGINE: {shown}"
    );

    let shown = hover_in_project(&[], Dialect::Sqlite);
    assert!(
        shown.ends_with(SQLITE_ICONTAINS),
        "no settings, the setting: {shown}"
    );
    let disagreeing = [
        ("proj/settings/test.py", sqlite.as_str()),
        ("proj/settings/prod.py", postgresql.as_str()),
    ];
    let shown = hover_in_project(&disagreeing, Dialect::Sqlite);
    assert!(
        shown.ends_with(SQLITE_ICONTAINS),
        "two engines, the setting: {shown}"
    );
    let from_environment = format!("{postgresql}DATABASES = dj_database_url.config()\n");
    let shown = hover_in_project(&[("proj/settings.py", &from_environment)], Dialect::Sqlite);
    assert!(
        shown.ends_with(SQLITE_ICONTAINS),
        "an engine not static, the setting: {shown}"
    );

    let mysql = databases("django.db.backends.mysql");
    let shown = hover_in_project(&[("proj/settings.py", &mysql)], Dialect::Postgresql);
    assert!(
        shown.ends_with(
            "FROM `shop_book` WHERE `shop_book`.`title` LIKE %war%\n```\n\
             *SQL as Django 5.2 prints it for MySQL*"
        ),
        "mysql ENGINE: {shown}"
    );
    let oracle = databases("django.db.backends.oracle");
    let shown = hover_in_project(&[("proj/settings.py", &oracle)], Dialect::Postgresql);
    assert!(
        shown.ends_with(
            "FROM \"SHOP_BOOK\" WHERE UPPER(\"SHOP_BOOK\".\"TITLE\") LIKE \
             UPPER(TRANSLATE(%war% USING NCHAR_CS)) ESCAPE TRANSLATE('\\' USING NCHAR_CS)\n```\n\
             *SQL as Django 5.2 prints it for Oracle*"
        ),
        "oracle ENGINE: {shown}"
    );
    let shown = hover_in_project(&[], Dialect::Mysql);
    assert!(
        shown.ends_with("*SQL as Django 5.2 prints it for MySQL*"),
        "no settings, the setting `mysql`: {shown}"
    );
    let other = databases("django_cockroachdb");
    let shown = hover_in_project(&[("proj/settings.py", &other)], Dialect::Postgresql);
    assert!(
        shown.ends_with(
            "\n*SQL not shown: the database backend `django_cockroachdb` is not rendered*"
        ),
        "a third-party ENGINE: {shown}"
    );
}

/// What hover shows on `filter` in `views`, with `models` as `shop/models.py`, in `dialect`.
fn hover_on_filter(models: &str, views: &str, dialect: Dialect) -> String {
    let project = common::temp::project(&[
        ("shop/models.py", models.as_bytes()),
        ("shop/views.py", views.as_bytes()),
    ]);
    let workspace = Workspace::scan(project.path(), |_, _| {});
    let tree = parse_python(views).unwrap();
    let file = workspace.context_for(&project.path().join("shop/views.py"));
    let offset = views.find("filter").unwrap();
    shown_at(views, &tree, &file, offset, dialect)
}

/// Where Django rewrites what Oracle takes, hover says so rather than show other SQL: a name
/// longer than 30 characters, which Django cuts and appends a hash of, and an `IN` list longer
/// than 1000 values, which it splits.
#[test]
fn oracle_declines_what_django_rewrites_for_it() {
    let long_table = format!(
        "{MODELS}\n    class Meta:\n        db_table = \"bookshop_books_in_print_and_out_of_print\"\n"
    );
    let shown = hover_on_filter(&long_table, VIEWS, Dialect::Oracle);
    assert!(
        shown.ends_with(
            "\n*SQL not shown: a name Oracle shortens (over 30 characters) or escapes (`%`) is \
             not rendered*"
        ),
        "a long table name on Oracle: {shown}"
    );
    let shown = hover_on_filter(&long_table, VIEWS, Dialect::Mysql);
    assert!(
        shown.contains("FROM `bookshop_books_in_print_and_out_of_print` WHERE"),
        "other dialects keep the name whole: {shown}"
    );

    let ids: Vec<String> = (0..=1000).map(|i| i.to_string()).collect();
    let views = format!(
        "from shop.models import Book\n\nBook.objects.filter(id__in=[{}])\n",
        ids.join(", ")
    );
    let shown = hover_on_filter(MODELS, &views, Dialect::Oracle);
    assert!(
        shown
            .ends_with("\n*SQL not shown: `in` a list Oracle splits into several is not rendered*"),
        "1001 values on Oracle: {shown}"
    );
    let shown = hover_on_filter(MODELS, &views, Dialect::Postgresql);
    assert!(
        shown.contains(", 999, 1000)\n```"),
        "1001 values elsewhere: {shown}"
    );
}

#[test]
fn the_sql_dialect_setting_reaches_hover_over_lsp() {
    let project = common::temp::project(&[
        ("shop/models.py", MODELS.as_bytes()),
        ("shop/views.py", VIEWS.as_bytes()),
    ]);
    let mut client = common::lsp_client::Client::spawn();
    client.initialize_with(json!({
        "processId": null,
        "rootUri": format!("file://{}", project.path().display()),
        "capabilities": {"window": {"workDoneProgress": true}},
        "initializationOptions": {"sqlDialect": "sqlite"},
    }));
    client.notify("initialized", json!({}));
    client.notification("$/progress", |p| p["value"]["kind"] == "end");
    let views = format!("file://{}", project.path().join("shop/views.py").display());
    client.open(&views, VIEWS, 1);
    let hover = client.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": views}, "position": {"line": 2, "character": 14}}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        shown.ends_with(&format!("{SQLITE_ICONTAINS}\n*django-orm-lsp*")),
        "hover with `sqlDialect: sqlite`: {shown}"
    );
    assert_eq!(client.shutdown_and_exit(), 0);
}

/// Hover on an N+1 finding: the SQL before its fix (the loop's SELECT, then the query each row
/// runs) and after it (one SELECT with the join).
#[test]
fn hover_on_a_finding_shows_the_sql_before_and_after_its_fix() {
    let (source, tree, file) = analysed("hovers.py");
    let findings = lint(&source, &tree, &Settings::default(), &file);
    let finding = findings
        .iter()
        .find(|f| f.code() == "ORM402" && source[f.range.clone()] == *"book.author")
        .expect("the loop's N+1 is found");
    let shown = fix_sql(&source, &tree, &file, finding, &in_dialect(Dialect::Sqlite))
        .expect("a fix to show");
    let columns = "\"library_book\".\"id\", \"library_book\".\"title\", \
                   \"library_book\".\"author_id\", \"library_book\".\"editor_id\", \
                   \"library_book\".\"press\", \"library_book\".\"pages\", \
                   \"library_book\".\"rating\", \"library_book\".\"in_print\"";
    let filtered = "WHERE \"library_book\".\"rating\" = 5 \
                    ORDER BY \"library_book\".\"rating\" DESC, \"library_book\".\"title\" ASC";
    assert_eq!(
        shown,
        format!(
            "**Before the fix**\n```sql\nSELECT {columns} FROM \"library_book\" {filtered}\n```\n\
             then on each row\n```sql\nSELECT \"people\".\"id\", \"people\".\"name\", \
             \"people\".\"email_address\" FROM \"people\" WHERE \"people\".\"id\" = %s LIMIT 21\n```\n\
             **After it**\n```sql\nSELECT {columns}, \"people\".\"id\", \"people\".\"name\", \
             \"people\".\"email_address\" FROM \"library_book\" INNER JOIN \"people\" ON \
             (\"library_book\".\"author_id\" = \"people\".\"id\") {filtered}\n```\n\
             *SQL as Django 5.2 prints it for SQLite*"
        )
    );
}
