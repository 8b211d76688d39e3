//! Query counts (the code lens `a + bN queries`), compared with real Django: every public
//! function of `tests/fixtures/query_counts/shelf/loops.py` holds one loop. Django runs each at 2
//! and at 5 rows (`tests/query_counts/count_queries.py`, `CaptureQueriesContext` on SQLite); the
//! function's lens, and its outermost loop's where nothing else in it runs queries, must give
//! the same number at both. The functions the module's `NO_LENS` names must get no lens, nor
//! their loops: the analyzer cannot count their queries (a condition, a helper, `__str__`, a
//! cascade ...).
//!
//! Django comes from the virtual environments `tests/execution.rs` caches under
//! `.cache/execution/`; without python3 or PyPI the comparison prints `skipped: <reason>`, and
//! only what needs no Django (which loops get a lens) is checked.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use django_orm_lsp::analysis::hover::sql::{Dialect, Release, Target};
use django_orm_lsp::analysis::hover::{fix_sql, hover_at};
use django_orm_lsp::analysis::query_counts::{queries_shown, query_counts, QueryCount};
use django_orm_lsp::analysis::{lint, FileContext};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::parse_python;
use django_orm_lsp::workspace::Workspace;
use tree_sitter::Tree;

use common::hover::{in_dialect, shown_at};

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/query_counts")
}

/// `loops.py` as the analyzer sees it in its project: text, tree and context.
fn loops_analysed() -> (String, Tree, FileContext) {
    let root = project();
    let workspace = Workspace::scan(&root, |_, _| {});
    let path = root.join("shelf/loops.py");
    let source = std::fs::read_to_string(&path).unwrap();
    let tree = parse_python(&source).unwrap();
    let file = workspace.context_for(&path);
    (source, tree, file)
}

/// Each top-level function's lenses: its own (on its `def` line) and its outermost loop's.
#[derive(Default)]
struct Lenses {
    function: Option<QueryCount>,
    outermost_loop: Option<QueryCount>,
}

/// What `loops.py` says of its functions.
struct Expected {
    declined: Vec<String>,
    no_function_lens: Vec<String>,
    beside: Vec<String>,
}

/// The lenses of each top-level function of `loops.py`, and what its lists say.
fn lenses() -> (BTreeMap<String, Lenses>, Expected) {
    let (source, tree, file) = loops_analysed();
    let counts = query_counts(&source, &tree, &file);
    let mut by_function = BTreeMap::new();
    let mut cursor = tree.root_node().walk();
    for definition in tree.root_node().named_children(&mut cursor) {
        if definition.kind() != "function_definition" {
            continue;
        }
        let name = definition.child_by_field_name("name").unwrap();
        let range = definition.byte_range();
        let inside = |c: &&QueryCount| range.start <= c.range.start && c.range.end <= range.end;
        let lenses = Lenses {
            function: counts.iter().find(|c| c.range == range).cloned(),
            outermost_loop: counts
                .iter()
                .filter(inside)
                .find(|c| c.range != range)
                .cloned(),
        };
        by_function.insert(source[name.byte_range()].to_string(), lenses);
    }
    let listed = |start: &str, end: &str| -> Vec<String> {
        let from = &source[source.find(start).unwrap()..];
        from[..from.find(end).unwrap()]
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.contains(' '))
            .map(str::to_string)
            .collect()
    };
    let expected = Expected {
        declined: listed("NO_LENS = {", "\n}"),
        no_function_lens: listed("NO_FUNCTION_LENS = {", "\n}"),
        beside: listed("QUERIES_BESIDE_THE_LOOP = [", "]"),
    };
    (by_function, expected)
}

fn shown(lens: &Option<QueryCount>) -> String {
    lens.as_ref().map_or("no lens".into(), QueryCount::title)
}

#[test]
fn loops_the_analyzer_cannot_count_get_no_lens() {
    let (lenses, expected) = lenses();
    assert!(expected.declined.len() >= 10, "NO_LENS is read");
    assert_eq!(
        expected.no_function_lens.len(),
        2,
        "NO_FUNCTION_LENS is read"
    );
    assert_eq!(expected.beside.len(), 2, "QUERIES_BESIDE_THE_LOOP is read");
    let wrong: Vec<String> = lenses
        .iter()
        .filter(|(function, lenses)| {
            if expected.no_function_lens.contains(function) {
                return lenses.function.is_some();
            }
            let due = !expected.declined.contains(function) && *function != "describe";
            lenses.function.is_some() != due || lenses.outermost_loop.is_some() != due
        })
        .map(|(function, lenses)| {
            let (own, inner) = (shown(&lenses.function), shown(&lenses.outermost_loop));
            format!("{function}: {own} (its loop: {inner})")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "lens where none is due, or none where one is: {wrong:#?}"
    );
    // What a lens lists (clicking it shows them) adds up to its count.
    for (function, lenses) in &lenses {
        for lens in [&lenses.function, &lenses.outermost_loop]
            .into_iter()
            .flatten()
        {
            let sum = |per_row: bool| -> u32 {
                lens.queries
                    .iter()
                    .filter(|q| q.per_row == per_row)
                    .map(|q| q.count)
                    .sum()
            };
            assert_eq!(
                (sum(false), sum(true)),
                (lens.before, lens.per_row),
                "{function}: {:?}",
                lens.queries
            );
        }
    }
}

/// What Django counts for each function (`"counts"`: `[at 2 rows, at 5 rows]`) and the SQL it
/// ran (`"sql"`).
fn counted(interpreter: &Path) -> serde_json::Value {
    let output = Command::new(interpreter)
        .arg(project().join("../../query_counts/count_queries.py"))
        .arg(project())
        .arg("shelf")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "count_queries.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn lenses_equal_the_queries_django_runs() {
    let Some(installed) = common::django_env::installed() else {
        return;
    };
    let (lenses, expected) = lenses();
    for django in installed {
        let ran = counted(&django.interpreter);
        let counted = ran["counts"].as_object().unwrap();
        let mut compared = 0;
        for (function, lenses) in &lenses {
            let mut held = vec![&lenses.function];
            let alone = !expected.beside.contains(function)
                && !expected.no_function_lens.contains(function);
            if alone {
                held.push(&lenses.outermost_loop);
            }
            for lens in held.into_iter().flatten() {
                let queries = counted
                    .get(function)
                    .and_then(|c| serde_json::from_value::<[u32; 2]>(c.clone()).ok())
                    .unwrap_or_else(|| {
                        panic!("{function}: Django counted {:?}", counted.get(function))
                    });
                let predicted = [2, 5].map(|rows| lens.before + lens.per_row * rows);
                assert_eq!(
                    predicted,
                    queries,
                    "{function} on Django {}: the lens says `{}`",
                    django.label,
                    lens.title()
                );
                compared += 1;
            }
        }
        println!(
            "Django {}: {compared} lenses (of functions and of loops) equal to the queries \
             counted at 2 and 5 rows",
            django.label
        );
        let release = match django.label {
            "4.2" => Release::Before5_2,
            _ => Release::Since5_2,
        };
        let shown = sql_shown_and_ran(&lenses, &ran["sql"], release);
        println!(
            "Django {}: {shown} statements that clicking a lens shows, each one Django ran",
            django.label
        );
    }
}

/// Every SQL statement clicking a lens shows, as `release` prints it, is one Django ran in that
/// function (`%s` standing for one parameter, which Django's SQLite log writes in, and `...` for
/// more of the same); returns how many were compared.
fn sql_shown_and_ran(
    lenses: &BTreeMap<String, Lenses>,
    ran: &serde_json::Value,
    release: Release,
) -> usize {
    let (source, tree, file) = loops_analysed();
    let mut compared = 0;
    // The log quotes text parameters; `str(qs.query)`, which the SQL shown follows, not: quotes
    // are left out of both.
    let quoted = regex::Regex::new("'([^']*)'").unwrap();
    for (function, lenses) in lenses {
        let Some(lens) = &lenses.function else {
            continue;
        };
        let target = Target {
            dialect: Dialect::Sqlite,
            release,
        };
        let shown = queries_shown(&source, &tree, &file, lens.range.start, Ok(target))
            .expect("a lens shows its queries");
        let ran: Vec<String> = ran[function]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| quoted.replace_all(q.as_str().unwrap(), "$1").into_owned())
            .collect();
        for statement in shown
            .lines()
            .filter(|l| !l.starts_with("--") && !l.is_empty())
        {
            let statement = statement.strip_suffix(';').unwrap();
            let statement = quoted.replace_all(statement, "$1");
            let pattern = regex::escape(&statement)
                .replace("%s", "[^,()]+")
                .replace(r"\.\.\.", ".+");
            let pattern = format!("^{pattern}$");
            let pattern = regex::Regex::new(&pattern).unwrap();
            assert!(
                ran.iter().any(|sql| pattern.is_match(sql)),
                "{function}: shown `{statement}`, which Django did not run: {ran:#?}"
            );
            compared += 1;
        }
    }
    compared
}

/// What hover shows on the name `method` in the first line of `loops.py` holding `fragment`.
fn hover_on(fragment: &str, method: &str) -> String {
    let (source, tree, file) = loops_analysed();
    let line = source.find(fragment).expect("the fragment is in loops.py");
    let offset = line + source[line..].find(method).expect("the method is there");
    shown_at(&source, &tree, &file, offset, Dialect::Postgresql)
}

#[test]
fn hover_shows_the_queries_of_prefetches_and_query_methods() {
    let prefetched = hover_on(
        "Author.objects.prefetch_related(\"books__tags\")",
        "prefetch",
    );
    let expected = [
        "```text\nQuerySet[shelf.Author] · prefetch_related: books__tags\n```\n```sql\nSELECT \"shelf_author\".\"id\", \
         \"shelf_author\".\"name\", \"shelf_author\".\"publisher_id\", \"shelf_author\".\"mentor_id\" \
         FROM \"shelf_author\"",
        "-- prefetch_related(\"books\"): one more query, for all the rows above\nSELECT \
         \"shelf_book\".\"id\", \"shelf_book\".\"title\", \"shelf_book\".\"author_id\", \
         \"shelf_book\".\"pages\" FROM \"shelf_book\" WHERE \"shelf_book\".\"author_id\" IN (%s, ...)",
        "-- prefetch_related(\"books__tags\"): one more query, for all the rows above\nSELECT \
         (\"shelf_book_tags\".\"book_id\") AS \"_prefetch_related_val_book_id\", \"shelf_tag\".\"id\", \
         \"shelf_tag\".\"name\" FROM \"shelf_tag\" INNER JOIN \"shelf_book_tags\" ON \
         (\"shelf_tag\".\"id\" = \"shelf_book_tags\".\"tag_id\") WHERE \
         \"shelf_book_tags\".\"book_id\" IN (%s, ...) ORDER BY \"shelf_tag\".\"name\" DESC\n```",
    ];
    assert_eq!(
        prefetched,
        expected.join("\n\n") + "\n*SQL as Django 5.2 prints it for PostgreSQL*"
    );

    // Since 5.2 a key's rows are selected by a tuple lookup, unordered.
    assert!(
        hover_on("Author.objects.prefetch_related(\"publisher\")", "prefetch").contains(
            "SELECT \"shelf_publisher\".\"id\", \"shelf_publisher\".\"name\" FROM \
             \"shelf_publisher\" WHERE (\"shelf_publisher\".\"id\") IN ((%s), ...)\n```"
        )
    );

    assert_eq!(
        hover_on("author.books.filter(pages__gte=1).count()", "count"),
        "```sql\nSELECT COUNT(*) AS \"__count\" FROM \"shelf_book\" WHERE \
         (\"shelf_book\".\"author_id\" = %s AND \"shelf_book\".\"pages\" >= 1)\n```\n\
         *SQL as Django 5.2 prints it for PostgreSQL*"
    );
    // No virtualenv here: the `target-django` setting names the release printed.
    let (source, tree, file) = loops_analysed();
    let offset = source.find("values_list(\"title\"").unwrap();
    let on_4_2 = Settings {
        target_django: (4, 2),
        ..in_dialect(Dialect::Postgresql)
    };
    let (_, shown) = hover_at(&source, &tree, &file, offset, &on_4_2).unwrap();
    assert!(
        shown.ends_with(
            "SELECT \"shelf_book\".\"title\", \"shelf_book\".\"pages\" FROM \"shelf_book\"\n```\n\
             *SQL as Django 4.2 prints it for PostgreSQL*"
        ),
        "{shown}"
    );
    assert!(hover_on("author.books.first()", "first").contains(
        "FROM \"shelf_book\" WHERE \"shelf_book\".\"author_id\" = %s ORDER BY \
         \"shelf_book\".\"id\" ASC LIMIT 1\n```"
    ));
}

#[test]
fn hover_on_a_prefetch_finding_shows_the_query_per_row_and_the_prefetch_after_its_fix() {
    let (source, tree, file) = loops_analysed();
    let findings = lint(&source, &tree, &Settings::default(), &file);
    let finding = findings
        .iter()
        .find(|f| f.code() == "ORM403" && source[f.range.clone()] == *"book.tags.all()")
        .expect("the tags read per row are found");
    let books =
        "SELECT \"shelf_book\".\"id\", \"shelf_book\".\"title\", \"shelf_book\".\"author_id\", \
                 \"shelf_book\".\"pages\" FROM \"shelf_book\"";
    let tags = "\"shelf_tag\".\"id\", \"shelf_tag\".\"name\" FROM \"shelf_tag\" INNER JOIN \
                \"shelf_book_tags\" ON (\"shelf_tag\".\"id\" = \"shelf_book_tags\".\"tag_id\")";
    assert_eq!(
        fix_sql(&source, &tree, &file, finding, &in_dialect(Dialect::Sqlite))
            .expect("a fix to show"),
        format!(
            "**Before the fix**\n```sql\n{books}\n```\nthen on each row\n```sql\nSELECT {tags} \
             WHERE \"shelf_book_tags\".\"book_id\" = %s ORDER BY \"shelf_tag\".\"name\" DESC\n```\n\
             **After it**\n```sql\n{books}\n\n-- prefetch_related(\"tags\"): one more query, for \
             all the rows above\nSELECT (\"shelf_book_tags\".\"book_id\") AS \
             \"_prefetch_related_val_book_id\", {tags} WHERE \"shelf_book_tags\".\"book_id\" IN \
             (%s, ...) ORDER BY \"shelf_tag\".\"name\" DESC\n```\n\
             *SQL as Django 5.2 prints it for SQLite*"
        )
    );
}
