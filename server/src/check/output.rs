//! How `check` prints findings. The JSON form is a public contract documented in the README:
//! change it only with a CHANGELOG entry.

use std::io::{self, Write};

use serde::Serialize;

use super::FileReport;

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
    reports: &[FileReport],
    files: usize,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => write_text(out, reports, files),
        OutputFormat::Json => write_json(out, reports),
    }
}

fn write_text(out: &mut impl Write, reports: &[FileReport], files: usize) -> io::Result<()> {
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

fn write_json(out: &mut impl Write, reports: &[FileReport]) -> io::Result<()> {
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
