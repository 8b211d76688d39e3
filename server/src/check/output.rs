//! How `check` prints findings. The JSON form is a public contract documented in the README:
//! change it only with a CHANGELOG entry.

use std::io::{self, Write};

use serde::Serialize;

use super::{Change, FileReport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    code: &'a str,
    name: &'a str,
    message: &'a str,
    severity: &'a str,
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    applicability: &'a str,
    message: &'a str,
    edits: Vec<JsonEdit<'a>>,
}

#[derive(Serialize)]
struct JsonEdit<'a> {
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    content: &'a str,
}

pub fn write(
    out: &mut impl Write,
    format: OutputFormat,
    reports: &[&FileReport],
    files: usize,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => write_text(out, reports, files),
        OutputFormat::Json => write_json(out, reports),
    }
}

fn write_text(out: &mut impl Write, reports: &[&FileReport], files: usize) -> io::Result<()> {
    let mut total = 0;
    let mut fixable = 0;
    for report in reports {
        for d in &report.diagnostics {
            let at = report.locate(&d.range);
            let marker = if d.fix.as_ref().is_some_and(|f| f.is_safe()) {
                " [*]"
            } else {
                ""
            };
            writeln!(
                out,
                "{}:{}:{}: {} {}{marker}",
                report.path.display(),
                at.line,
                at.column,
                d.code(),
                d.message
            )?;
            total += 1;
            fixable += usize::from(!marker.is_empty());
        }
    }
    let noun = if files == 1 { "file" } else { "files" };
    if total == 0 {
        writeln!(out, "No ORM issues found in {files} {noun}.")
    } else {
        writeln!(
            out,
            "Found {total} ORM issue{} in {files} {noun} ({fixable} with a safe fix, marked [*]).",
            if total == 1 { "" } else { "s" }
        )
    }
}

fn write_json(out: &mut impl Write, reports: &[&FileReport]) -> io::Result<()> {
    let mut items = Vec::new();
    for report in reports {
        for d in &report.diagnostics {
            let at = report.locate(&d.range);
            let fix = d.fix.as_ref().map(|f| JsonFix {
                applicability: f.applicability.as_str(),
                message: &f.title,
                edits: f
                    .edits
                    .iter()
                    .map(|e| {
                        let at = report.locate(&e.range);
                        JsonEdit {
                            line: at.line,
                            column: at.column,
                            end_line: at.end_line,
                            end_column: at.end_column,
                            content: &e.content,
                        }
                    })
                    .collect(),
            });
            items.push(JsonDiagnostic {
                path: report.path.display().to_string(),
                line: at.line,
                column: at.column,
                end_line: at.end_line,
                end_column: at.end_column,
                code: d.code(),
                name: d.rule.name,
                message: &d.message,
                severity: d.severity.as_str(),
                fix,
            });
        }
    }
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)
}

/// `Fixed 3 issues in 2 files.` (or `Would fix ...` for `--diff`).
pub fn fixed_summary(verb: &str, applied: usize, files: usize) -> String {
    format!(
        "{verb} {applied} issue{} in {files} file{}.",
        if applied == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" }
    )
}

/// A unified diff of one file's fixes, with the path as given in both headers (`patch -p0`).
pub fn write_diff(out: &mut impl Write, path: &std::path::Path, change: &Change) -> io::Result<()> {
    let name = path.display().to_string();
    let diff = similar::TextDiff::from_lines(&change.before, &change.after);
    write!(
        out,
        "{}",
        diff.unified_diff().context_radius(3).header(&name, &name)
    )
}

/// Findings per rule, most frequent first: count, code, name and how many have a fix that
/// `--fix` would apply (with `--unsafe-fixes`, unsafe ones too).
pub fn write_statistics(
    out: &mut impl Write,
    format: OutputFormat,
    reports: &[&FileReport],
    fix: Option<crate::analysis::FixMode>,
) -> io::Result<()> {
    let mode = fix.unwrap_or_default();
    let mut rows: Vec<(&'static str, &'static str, usize, usize)> = Vec::new();
    for d in reports.iter().flat_map(|r| &r.diagnostics) {
        let fixable = usize::from(d.fix.as_ref().is_some_and(|f| mode.applies(f)));
        match rows.iter_mut().find(|row| row.0 == d.code()) {
            Some(row) => {
                row.2 += 1;
                row.3 += fixable;
            }
            None => rows.push((d.code(), d.rule.name, 1, fixable)),
        }
    }
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    if format == OutputFormat::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|(code, name, count, fixable)| {
                serde_json::json!({"code": code, "name": name, "count": count, "fixable": fixable})
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        return writeln!(out);
    }
    let width = rows
        .iter()
        .map(|r| r.2.to_string().len())
        .max()
        .unwrap_or(1);
    let name_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (code, name, count, fixable) in &rows {
        writeln!(
            out,
            "{count:>width$}  {code}  {name:<name_width$}  {fixable} fixable"
        )?;
    }
    Ok(())
}
