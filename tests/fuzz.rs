//! Fuzz targets, run as property tests.
//!
//! cargo-fuzz (libFuzzer) needs a nightly toolchain, which the machines this project builds on do
//! not have, so the fuzzing is done with proptest (already a dev-dependency): generators that
//! produce nasty input (multi-byte characters, every line break, unbalanced brackets, deep
//! nesting, NULs, lossy-decoded invalid UTF-8, lying frame headers), run on stable, in CI, with a
//! small default number of cases. A longer run:
//!
//! ```sh
//! FUZZ_CASES=100000 cargo test --release --test fuzz
//! ```
//!
//! `FUZZ_CASES` sets the case count of every target (the protocol target, which starts a server
//! per case, runs a tenth of it). A failing case is shrunk and its seed saved by proptest in
//! `tests/fuzz.proptest-regressions`, from where it is replayed first on the next run.
//!
//! The three targets:
//! 1. `incremental_edits_equal_a_fresh_parse`: batches of edits applied to a `Document`
//!    (clamped, reversed and multi-line ranges, every encoding) give the text an independent
//!    model gives, and the tree a fresh parse gives.
//! 2. `lint_and_every_fix_survive_any_text`: arbitrary bytes and Python-ish text (Django ORM
//!    snippets from the rule fixtures, cut, mixed and broken) through `analysis::lint` with a real
//!    model index: no rule panics (they are caught and logged, so a panic hook counts them), and
//!    every fix applies (on text that parses: leaving no syntax error; fix-all: never adding
//!    one). The same text through the real binary's `check --fix --unsafe-fixes`: nothing on
//!    stderr says it panicked.
//! 3. `server_survives_any_frames`: arbitrary JSON-RPC frames to the real binary's `serve`;
//!    afterwards it still answers `initialize` and `shutdown`, and exits with 0 on `exit`.

mod common;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Once};

use common::fixes::syntax_errors;
use common::lsp_client::Client;
use django_orm_lsp::analysis::index::{extract, module_name, FileFacts, ModelIndex};
use django_orm_lsp::analysis::{
    apply_edits, fix_all_with, lint, lint_incremental, FileContext, FixMode, LintCache,
};
use django_orm_lsp::settings::Settings;
use django_orm_lsp::store::{parse_python, Document, PositionEncoding, TextChange, TextPosition};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{json, Value};

/// The number of cases: `FUZZ_CASES` if set, else the CI-sized `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Shrinking a failure is worth a while, not forever.
        max_shrink_iters: 2_000,
        // Failures are saved beside this file, in fuzz.proptest-regressions, and replayed first.
        source_file: Some(file!()),
        ..Config::default()
    }
}

/// The CI-sized run draws the same cases every time, so `cargo test` cannot fail on a case it
/// never met before; a run with `FUZZ_CASES` set explores new ones (a failure found there is
/// saved in fuzz.proptest-regressions and replayed by every later run).
fn runner(cases: u32) -> TestRunner {
    let config = config(cases);
    if std::env::var_os("FUZZ_CASES").is_some() {
        TestRunner::new(config)
    } else {
        let rng = TestRng::deterministic_rng(config.rng_algorithm);
        TestRunner::new_with_rng(config, rng)
    }
}

fn encodings() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf32)
    ]
}

// ---------------------------------------------------------------------------------------------
// 1. Incremental edits vs a fresh parse. (This target replaces the narrower proptest that used
//    to live in tests/incremental.rs: single-line ranges only, positions modelled with the
//    server's own `offset_at`.)

const SEED: &str = "from blog.models import Entry\r\n\r\ndef f(blog):\n    qs = Entry.objects.filter(blog=blog)  # é\n    if len(qs) > 0:\r        return [e.title for e in qs]\n    return 'ü😀'\n\tx = \"a\u{2028}b\u{85}c\" \\\r\n  + 1\n";

/// Fragments that make and break syntax, and characters that are easy to miscount: multi-byte
/// UTF-8, surrogate pairs in UTF-16, combining marks, a ZWJ sequence, Unicode line separators
/// that are not LSP line breaks, and every LSP line break, alone and in pairs that join
/// (`\r` then `\n` inserted next to it).
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    ":",
    "'",
    "\"\"\"",
    "\n",
    "\r\n",
    "\r",
    "\n\r",
    "    ",
    "\t",
    "x",
    "é",
    "😀",
    "e\u{301}",
    "👩\u{200d}💻",
    "\u{2028}",
    "\u{85}",
    "\u{feff}",
    "def g():\n    return 1\n",
    "class M(models.Model):\r\n    a = models.IntegerField()\r\n",
    "if x:\n",
    "len(qs)",
    "for e in Entry.objects.all():\n        e.save()\n",
    "#",
    "# noqa: ORM101",
    "\\",
    "",
];

#[derive(Clone, Debug)]
struct EditSpec {
    start: (u32, u32),
    end: (u32, u32),
    text: &'static str,
}

/// A line or character: mostly small, sometimes just past the end, sometimes absurd.
fn coordinate(small: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 0..small,
        1 => small..small * 4,
        1 => Just(u32::MAX),
    ]
}

fn edit_strategy() -> impl Strategy<Value = EditSpec> {
    (
        (coordinate(14), coordinate(40)),
        // The end: on the same line, a few lines down (a deletion across lines), or anywhere
        // (possibly before the start: a reversed range is empty at its start).
        prop_oneof![
            4 => (Just(0u32), 0u32..10).prop_map(|(l, c)| (l, c, true)),
            2 => (1u32..5, 0u32..40).prop_map(|(l, c)| (l, c, true)),
            1 => (coordinate(14), coordinate(40)).prop_map(|(l, c)| (l, c, false)),
        ],
        proptest::sample::select(FRAGMENTS),
    )
        .prop_map(|(start, (l, c, relative), text)| {
            let end = if relative {
                let line = start.0.saturating_add(l);
                let character = if l == 0 { start.1.saturating_add(c) } else { c };
                (line, character)
            } else {
                (l, c)
            };
            EditSpec { start, end, text }
        })
}

/// The byte offset of an LSP position, written independently of the server's position code:
/// lines end at `\n`, `\r\n` or `\r`; a line past the end is the end of the text; a character
/// past its line's end is the line's end; a position inside a character rounds down.
fn model_offset(text: &str, line: u32, character: u32, encoding: PositionEncoding) -> usize {
    let bytes = text.as_bytes();
    let mut line_start = 0;
    let mut current = 0;
    let mut i = 0;
    while current < line {
        if i >= bytes.len() {
            return text.len();
        }
        match bytes[i] {
            b'\n' => {
                current += 1;
                line_start = i + 1;
            }
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                current += 1;
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let mut units = 0usize;
    for (offset, ch) in text[line_start..].char_indices() {
        if ch == '\n' || ch == '\r' {
            return line_start + offset;
        }
        units += match encoding {
            PositionEncoding::Utf8 => ch.len_utf8(),
            PositionEncoding::Utf16 => ch.len_utf16(),
            PositionEncoding::Utf32 => 1,
        };
        if units > character as usize {
            return line_start + offset;
        }
    }
    text.len()
}

#[test]
fn incremental_edits_equal_a_fresh_parse() {
    let strategy = (
        proptest::collection::vec(proptest::collection::vec(edit_strategy(), 1..5), 1..8),
        encodings(),
    );
    let mut runner = runner(cases(400));
    runner
        .run(&strategy, |(batches, encoding)| {
            let mut document = Document::new(SEED, 0);
            let mut model = SEED.to_string();
            for (version, batch) in batches.iter().enumerate() {
                let mut changes = Vec::new();
                for spec in batch {
                    let from = model_offset(&model, spec.start.0, spec.start.1, encoding);
                    let to = model_offset(&model, spec.end.0, spec.end.1, encoding).max(from);
                    model.replace_range(from..to, spec.text);
                    changes.push(TextChange {
                        range: Some((
                            TextPosition::new(spec.start.0, spec.start.1),
                            TextPosition::new(spec.end.0, spec.end.1),
                        )),
                        text: spec.text.to_string(),
                    });
                }
                document.apply_changes(&changes, version as i32 + 1, encoding);
                prop_assert_eq!(&document.rope().to_string(), &model);
                // The text is parsed only when a tree is needed: after every other batch here,
                // so that edits also pile up on a tree over several batches before a parse.
                if version % 2 == 1 {
                    document.snapshot().tree();
                }
            }
            let fresh = parse_python(&model).unwrap();
            let incremental = document.tree().unwrap();
            prop_assert_eq!(
                incremental.root_node().byte_range(),
                fresh.root_node().byte_range()
            );
            prop_assert_eq!(
                incremental.root_node().has_error(),
                fresh.root_node().has_error()
            );
            // Around a syntax error tree-sitter's recovery depends on the subtrees it reuses;
            // well-formed text must give the very same tree.
            if !fresh.root_node().has_error() {
                prop_assert_eq!(
                    incremental.root_node().to_sexp(),
                    fresh.root_node().to_sexp()
                );
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Any text through the rules and their fixes.

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            python_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

/// Every line of the rule fixtures and the demo project: Django ORM code that makes every rule
/// fire, to be cut up and mixed.
static CORPUS_LINES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut files = Vec::new();
    python_files(&repo_path("tests/fixtures/rules"), &mut files);
    python_files(&repo_path("tests/fixtures/demo_project"), &mut files);
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    assert!(lines.len() > 500, "the fixtures are missing");
    lines
});

/// Every top-level statement of the rule fixtures and the demo project, whole: code that
/// parses, to be recombined into files that still parse.
static CORPUS_UNITS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut files = Vec::new();
    python_files(&repo_path("tests/fixtures/rules"), &mut files);
    python_files(&repo_path("tests/fixtures/demo_project"), &mut files);
    let mut units = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let tree = parse_python(&text).unwrap();
        let root = tree.root_node();
        let mut cursor = root.walk();
        units.extend(
            root.named_children(&mut cursor)
                .filter(|n| !n.has_error())
                .map(|n| text[n.byte_range()].to_string()),
        );
    }
    units
});

/// The demo project's files, indexed as a workspace would.
static DEMO_FACTS: LazyLock<Vec<Arc<FileFacts>>> = LazyLock::new(|| {
    let root = repo_path("tests/fixtures/demo_project");
    let mut files = Vec::new();
    python_files(&root, &mut files);
    files
        .iter()
        .map(|path| {
            let source = std::fs::read_to_string(path).unwrap();
            let tree = parse_python(&source).unwrap();
            let (module, is_package) = module_name(path.strip_prefix(&root).unwrap());
            Arc::new(extract(&source, &tree, &module, is_package))
        })
        .collect()
});

/// A piece of a generated file.
#[derive(Clone, Debug)]
enum Chunk {
    /// `len` consecutive lines of the corpus from line `start`, indented by `indent` levels.
    Corpus {
        start: usize,
        len: usize,
        indent: usize,
    },
    Text(&'static str),
    /// `depth` nested brackets of one kind around a Django call, closed or not.
    Nested {
        open: &'static str,
        depth: usize,
        closed: bool,
    },
    /// A very long line.
    Long(usize),
    /// Bytes of any kind, decoded as UTF-8 lossily (invalid sequences become U+FFFD).
    Bytes(Vec<u8>),
}

const NASTY: &[&str] = &[
    "(",
    ")",
    "[",
    "]}",
    "{",
    ":",
    "'",
    "\"",
    "\"\"\"",
    "f'{",
    "\\",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "    ",
    "\0",
    "\u{feff}",
    "é😀",
    "e\u{301}",
    "\u{2028}",
    "# noqa",
    "# noqa: ORM101, ORM102",
    "# orm: ignore[ORM201]",
    "lambda: ",
    "async ",
    "await ",
    "yield ",
    "*",
    "**",
    ":=",
    "@decorator\n",
    "else:\n",
    "except Entry.DoesNotExist:\n",
    "with transaction.atomic():\n",
    "match x:\n    case _:\n",
    "for entry in Entry.objects.all():\n",
    "while True:\n",
    "len(Entry.objects.all())",
    "Entry.objects.filter(blog__name='x').count() > 0",
    "[e.headline for e in Entry.objects.all()]",
    "sum(e.rating for e in Entry.objects.all())",
    "entry.blog.id",
    "Entry.objects.create(headline=h)",
    "row.save()",
];

fn chunk_strategy() -> impl Strategy<Value = Chunk> {
    prop_oneof![
        10 => (any::<prop::sample::Index>(), 1usize..16, 0usize..3).prop_map(|(i, len, indent)| {
            Chunk::Corpus { start: i.index(CORPUS_LINES.len()), len, indent }
        }),
        6 => proptest::sample::select(NASTY).prop_map(Chunk::Text),
        1 => (proptest::sample::select(&["(", "[", "{", "len(", "Entry.objects.filter(pk=", "not ", "-"][..]), 1usize..300, any::<bool>())
            .prop_map(|(open, depth, closed)| Chunk::Nested { open, depth, closed }),
        1 => (1usize..20_000).prop_map(Chunk::Long),
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Chunk::Bytes),
    ]
}

fn render_chunks(chunks: &[Chunk]) -> String {
    let mut out = String::new();
    for chunk in chunks {
        match chunk {
            Chunk::Corpus { start, len, indent } => {
                for line in CORPUS_LINES.iter().skip(*start).take(*len) {
                    out.push_str(&"    ".repeat(*indent));
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Chunk::Text(text) => out.push_str(text),
            Chunk::Nested {
                open,
                depth,
                closed,
            } => {
                let close = match open.chars().last() {
                    Some('(') | Some('=') => ")",
                    Some('[') => "]",
                    Some('{') => "}",
                    _ => "",
                };
                out.push_str("x = ");
                out.push_str(&open.repeat(*depth));
                out.push_str("Entry.objects.all()");
                if *closed {
                    out.push_str(&close.repeat(*depth));
                }
                out.push('\n');
            }
            Chunk::Long(n) => {
                out.push_str("total = len(Entry.objects.filter(headline=\"");
                out.push_str(&"é".repeat(*n / 2));
                out.push_str("\")) + 1");
                out.push_str(&" + 1".repeat(*n / 8));
                out.push('\n');
            }
            Chunk::Bytes(bytes) => out.push_str(&String::from_utf8_lossy(bytes)),
        }
    }
    out
}

/// Whole top-level statements recombined, with `\n`, `\r\n` or `\r` line ends: files that
/// parse, where every fix must keep them parsing.
fn valid_source_strategy() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(any::<prop::sample::Index>(), 1..14),
        proptest::sample::select(&["\n", "\r\n", "\r"][..]),
    )
        .prop_map(|(picks, eol)| {
            let units: Vec<&str> = picks
                .iter()
                .map(|i| CORPUS_UNITS[i.index(CORPUS_UNITS.len())].as_str())
                .collect();
            let text = units.join("\n\n\n") + "\n";
            text.replace("\r\n", "\n").replace('\n', eol)
        })
}

/// Generated source files: valid ones, mixed and broken chunks, or nothing but arbitrary bytes.
fn source_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => valid_source_strategy(),
        8 => proptest::collection::vec(chunk_strategy(), 0..24).prop_map(|c| render_chunks(&c)),
        1 => proptest::collection::vec(any::<u8>(), 0..2048)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

thread_local! {
    /// Panics on this thread since the hook was installed, caught or not.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Rules run under `catch_unwind` and a panicking rule is only logged; a hook sees every panic,
/// so the tests count them (per thread: the tests of this file run in parallel).
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

fn panics() -> usize {
    PANICS.with(Cell::get)
}

/// Lints `source` with the demo project's models plus its own, and checks every fix.
fn lint_and_fix(source: &str) -> Result<(), TestCaseError> {
    let tree = parse_python(source).unwrap();
    let mut files = DEMO_FACTS.clone();
    files.push(Arc::new(extract(source, &tree, "blog.fuzzed", false)));
    let file = FileContext::new(Arc::new(ModelIndex::build(files)), "blog.fuzzed", false);
    // An old Django: the rules that only report or fix before 3.2 or 4.0 run too.
    let settings = Settings {
        target_django: Settings::parse_django_version("3.1").unwrap(),
        ..Settings::default()
    };

    let before = panics();
    let found = lint(source, &tree, &settings, &file);
    let errors = syntax_errors(source);
    for d in &found {
        prop_assert!(
            d.range.start <= d.range.end && d.range.end <= source.len(),
            "{} reported outside the text",
            d.code()
        );
        let Some(fix) = &d.fix else { continue };
        // The server and `check` never lint text holding a NUL (it is binary): there only the
        // absence of panics matters.
        if source.contains('\0') {
            continue;
        }
        let fixed = apply_edits(source, &fix.edits);
        prop_assert!(
            fixed.is_some(),
            "{}: edits overlap, split a character or leave the text: {:?}",
            d.code(),
            fix.edits
        );
        let fixed = fixed.unwrap();
        let after = syntax_errors(&fixed);
        // On text that is not Python (syntax errors, or statements run together on one line,
        // which tree-sitter accepts), a fix can land in the wreckage: fix-all, `check --fix` and
        // the server's quick fixes re-parse and refuse a fix that adds errors there. Known to add
        // errors on broken text: ORM101, ORM103, ORM104, ORM201, ORM202, ORM408 and ORM900.
        // FUZZ_STRICT_FIXES=1 holds every fix to it.
        if (errors > 0 || statements_share_a_line(source))
            && std::env::var_os("FUZZ_STRICT_FIXES").is_none()
        {
            continue;
        }
        prop_assert!(
            after <= errors,
            "{}'s fix `{}` takes the syntax errors from {} to {}:\n--- before\n{}\n--- after\n{}",
            d.code(),
            fix.title,
            errors,
            after,
            source,
            fixed
        );
    }
    // Re-linting only changed statements agrees with the full lint, from a cold cache.
    let mut cache = LintCache::default();
    let incremental = lint_incremental(source, &tree, &settings, &file, &mut cache);
    prop_assert_eq!(&incremental, &found);
    if let Some(fixed) = fix_all_with(source, &settings, &file, FixMode::SafeAndUnsafe) {
        prop_assert!(syntax_errors(&fixed.text) <= errors, "fix-all added errors");
    }
    prop_assert_eq!(panics(), before, "a rule panicked on:\n{}", source);
    Ok(())
}

/// Two statements on one line with no `;` between them: not Python, though tree-sitter's parse
/// of it has no error node (`qs.count() > 0    x += 1`).
fn statements_share_a_line(source: &str) -> bool {
    let tree = parse_python(source).expect("parses");
    let mut shared = false;
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        let statements: Vec<_> = node
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment")
            .collect();
        if matches!(node.kind(), "module" | "block") {
            shared |= statements.windows(2).any(|pair| {
                pair[1].start_position().row == pair[0].end_position().row
                    && !source[pair[0].end_byte()..pair[1].start_byte()].contains(';')
            });
        }
        stack.extend(statements);
    }
    shared
}

#[test]
fn lint_and_every_fix_survive_any_text() {
    count_panics();
    let mut runner = runner(cases(200));
    runner
        .run(&source_strategy(), |s| lint_and_fix(&s))
        .unwrap();
}

/// The same kind of files through the real binary's `check`, where panics would be reported on
/// stderr (and `check`'s own paths, `--fix` rounds and reading odd files, run too).
#[test]
fn check_never_reports_a_panic() {
    let strategy = proptest::collection::vec(source_strategy(), 1..24);
    let mut runner = runner((cases(300) / 50).max(3));
    let binary = env!("CARGO_BIN_EXE_django-orm-lsp");
    runner
        .run(&strategy, |sources| {
            let mut files: Vec<(String, Vec<u8>)> = vec![(
                "blog/models.py".into(),
                std::fs::read(repo_path("tests/fixtures/demo_project/blog/models.py")).unwrap(),
            )];
            for (i, source) in sources.iter().enumerate() {
                files.push((format!("blog/fuzz_{i}.py"), source.clone().into_bytes()));
            }
            let borrowed: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_slice()))
                .collect();
            let project = common::temp::project(&borrowed);
            for args in [
                &["check", "--output-format", "json", "."][..],
                &["check", "--fix", "--unsafe-fixes", "."][..],
            ] {
                let out = std::process::Command::new(binary)
                    .args(args)
                    .current_dir(project.path())
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                prop_assert!(
                    !stderr.contains("panicked") && !stderr.contains("internal error"),
                    "{args:?}: {stderr}"
                );
                prop_assert!(
                    matches!(out.status.code(), Some(0..=2)),
                    "{args:?} exited with {:?}: {stderr}",
                    out.status
                );
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. Any frames to the server.

const METHODS: &[&str] = &[
    "initialize",
    "initialized",
    "shutdown",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didSave",
    "textDocument/didClose",
    "textDocument/hover",
    "textDocument/codeAction",
    "textDocument/diagnostic",
    "workspace/didChangeConfiguration",
    "workspace/didChangeWatchedFiles",
    "$/cancelRequest",
    "$/setTrace",
    "$/unknownNotification",
    "unknown/request",
    "",
];

const DOC: &str = "file:///fuzz/blog/views.py";

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(u32::MAX)),
        ".{0,12}".prop_map(Value::from),
        proptest::sample::select(
            &[
                DOC,
                "file:///nonexistent-fuzz-root",
                "not a uri",
                "file:///fuzz/other.py",
                "untitled:1"
            ][..]
        )
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map(
                proptest::sample::select(
                    &[
                        "uri",
                        "textDocument",
                        "range",
                        "start",
                        "end",
                        "line",
                        "character",
                        "text",
                        "version",
                        "contentChanges",
                        "position",
                        "context",
                        "diagnostics",
                        "id",
                        "settings",
                        "changes",
                        "capabilities",
                        "rootUri",
                        "x"
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn position() -> impl Strategy<Value = Value> {
    (coordinate(8), coordinate(60)).prop_map(|(l, c)| json!({"line": l, "character": c}))
}

fn range() -> impl Strategy<Value = Value> {
    (position(), position()).prop_map(|(s, e)| json!({"start": s, "end": e}))
}

/// Params for `method` that are nearly right (so they reach the handler), or garbage.
fn params_for(method: &'static str) -> BoxedStrategy<Value> {
    let text = source_strategy().prop_map(|s| s.chars().take(3000).collect::<String>());
    let nearly = match method {
        "initialize" => (proptest::sample::select(vec![json!(null), json!("file:///nonexistent-fuzz-root"), json!("nope"), json!(3)]), json_value())
            .prop_map(|(root, caps)| json!({"processId": null, "rootUri": root, "capabilities": caps, "initializationOptions": {"select": ["ORM1"], "severity": {"ORM101": "bogus"}}}))
            .boxed(),
        "textDocument/didOpen" => (text, any::<i32>()).prop_map(|(t, v)| json!({"textDocument": {"uri": DOC, "languageId": "python", "version": v, "text": t}})).boxed(),
        "textDocument/didChange" => (
            any::<i32>(),
            proptest::collection::vec((proptest::option::of(range()), proptest::sample::select(FRAGMENTS)), 0..4),
        )
            .prop_map(|(v, changes)| {
                let changes: Vec<Value> = changes
                    .into_iter()
                    .map(|(r, t)| match r {
                        Some(r) => json!({"range": r, "text": t}),
                        None => json!({"text": t}),
                    })
                    .collect();
                json!({"textDocument": {"uri": DOC, "version": v}, "contentChanges": changes})
            })
            .boxed(),
        "textDocument/hover" => position().prop_map(|p| json!({"textDocument": {"uri": DOC}, "position": p})).boxed(),
        "textDocument/codeAction" => (range(), json_value(), proptest::option::of(proptest::sample::select(&["quickfix", "source.fixAll", "source", "refactor"][..])))
            .prop_map(|(r, d, only)| json!({"textDocument": {"uri": DOC}, "range": r, "context": {"diagnostics": [{"range": r, "message": "m", "code": "ORM101", "data": d}], "only": only.map(|o| vec![o])}}))
            .boxed(),
        "textDocument/didSave" | "textDocument/didClose" | "textDocument/diagnostic" => {
            Just(json!({"textDocument": {"uri": DOC}})).boxed()
        }
        "workspace/didChangeConfiguration" => json_value().prop_map(|s| json!({"settings": s})).boxed(),
        "workspace/didChangeWatchedFiles" => (0u8..5).prop_map(|t| json!({"changes": [{"uri": "file:///nonexistent-fuzz-root/m.py", "type": t}]})).boxed(),
        "$/cancelRequest" => json_leaf().prop_map(|id| json!({"id": id})).boxed(),
        _ => json_value().boxed(),
    };
    prop_oneof![3 => nearly, 1 => json_value().boxed(), 1 => Just(Value::Null)].boxed()
}

fn message() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        2 => any::<i32>().prop_map(|i| Some(json!(i))),
        1 => Just(None),
        1 => Just(Some(json!("a-string-id"))),
        1 => json_leaf().prop_map(Some),
    ];
    (proptest::sample::select(METHODS), id)
        .prop_flat_map(|(method, id)| (Just(method), Just(id), params_for(method)))
        .prop_map(|(method, id, params)| {
            let mut m = json!({"jsonrpc": "2.0", "method": method, "params": params});
            if let Some(id) = id {
                m["id"] = id;
            }
            m
        })
}

/// One piece of input and the body lengths its headers claim (that many bytes may be read as a
/// body later, whatever follows).
#[derive(Clone, Debug)]
struct Piece {
    bytes: Vec<u8>,
    claimed: usize,
}

fn framed(body: &[u8], header: &str) -> Piece {
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    Piece {
        bytes,
        claimed: body.len(),
    }
}

fn piece() -> impl Strategy<Value = Piece> {
    let body = prop_oneof![
        4 => message().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        // Nested deeper than any JSON parser's recursion limit.
        1 => (1usize..5000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => (1usize..5000).prop_map(|n| format!("{{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{}1{}}}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ];
    prop_oneof![
        // Well-framed.
        6 => body.clone().prop_map(|b| {
            let header = format!("Content-Length: {}\r\n\r\n", b.len());
            framed(&b, &header)
        }),
        // Other headers, odd spellings, LF-only line ends.
        2 => (body.clone(), 0usize..6).prop_map(|(b, style)| {
            let n = b.len();
            let header = match style {
                0 => format!("content-length:{n}\n\n"),
                1 => format!("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {n}\r\n\r\n"),
                2 => format!("Content-Length: {n}\r\nContent-Length: {n}\r\n\r\n"),
                3 => format!("\r\n\r\nContent-Length:   {n}  \r\nX-Junk: {}\r\n\r\n", "y".repeat(n % 300)),
                4 => format!("Content-Length: {n}\r\n{}\r\n\r\n", "z".repeat(9000)),
                _ => format!("Content-Length: {n}\r\nno colon here\r\n\r\n"),
            };
            framed(&b, &header)
        }),
        // A Content-Length that lies, shorter or longer.
        2 => (body.clone(), -40i64..40).prop_map(|(b, delta)| {
            let n = (b.len() as i64 + delta).max(0) as usize;
            let mut p = framed(&b, &format!("Content-Length: {n}\r\n\r\n"));
            p.claimed = n;
            p
        }),
        // Unusable lengths: the body is skipped or read as headers.
        1 => (body.clone(), proptest::sample::select(&["-1", "abc", "0x10", "99999999999999999999999", "", "1e3", "+5"][..]))
            .prop_map(|(b, n)| framed(&b, &format!("Content-Length: {n}\r\n\r\n"))),
        // No Content-Length at all.
        1 => body.clone().prop_map(|b| framed(&b, "Content-Type: x\r\n\r\n")),
        // Truncated: the header and part of the body (what follows completes it).
        1 => (body, any::<prop::sample::Index>()).prop_map(|(b, cut)| {
            let mut p = framed(&b, &format!("Content-Length: {}\r\n\r\n", b.len()));
            let keep = p.bytes.len() - cut.index(b.len() + 1);
            p.bytes.truncate(keep);
            p
        }),
        // Half a header.
        1 => Just(Piece { bytes: b"Content-Len".to_vec(), claimed: 0 }),
        // Raw bytes.
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| Piece { bytes, claimed: 0 }),
    ]
}

/// Sends `pieces`, then enough blank lines to complete any body a lying header still waits for,
/// then `initialize` and `shutdown`: both must be answered, and `exit` must end the server with 0.
fn survives(pieces: &[Piece]) -> Result<(), TestCaseError> {
    let mut client = Client::spawn_capturing_stderr();
    let mut input = Vec::new();
    for piece in pieces {
        input.extend_from_slice(&piece.bytes);
    }
    // Every claimed length could still be read as a body from what follows, and a header line
    // or block may still be open: blank lines close those and fill any such body.
    let claimed: usize = pieces.iter().map(|p| p.claimed + 64).sum();
    input.extend(b"\r\n".repeat(claimed + 64));
    client.send_raw(&input);
    let init = client.request_with_id(
        json!("probe-initialize"),
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    prop_assert!(
        init.get("result").is_some() || init.get("error").is_some(),
        "{}",
        init
    );
    let shutdown = client.request_with_id(json!("probe-shutdown"), "shutdown", Value::Null);
    // An error only if a `shutdown` among the pieces got there first.
    prop_assert!(
        shutdown.get("error").is_none() || shutdown["error"]["code"] == -32600,
        "shutdown failed: {}",
        shutdown
    );
    client.notify("exit", Value::Null);
    let code = client.wait_for_exit();
    let stderr = client.stderr();
    prop_assert_eq!(code, 0, "stderr: {}", stderr);
    prop_assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{}",
        stderr
    );
    Ok(())
}

#[test]
fn server_survives_any_frames() {
    let strategy = proptest::collection::vec(piece(), 1..12);
    let mut runner = runner((cases(400) / 10).max(8));
    runner.run(&strategy, |pieces| survives(&pieces)).unwrap();
}
