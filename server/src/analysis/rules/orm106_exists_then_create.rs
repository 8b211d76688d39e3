//! ORM106 exists-then-create: `if not qs.filter(**kw).exists(): M.objects.create(**kw)`, or a
//! `get()` in `try` with `create()` in `except M.DoesNotExist`, is two queries with a race
//! between them; `M.objects.get_or_create(**kw)` says it in one call (and handles the race).

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::syntax::{method_call, normalized, simple_assignment, strip_parens};
use crate::analysis::writes::{fix_unless, fresh_local, replace_statements};

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM106",
        name: "exists-then-create",
        severity: Severity::Info,
    },
    query: include_str!("../../../../queries/orm106_exists_then_create.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let (Some(call), Some(manager)) = (m.get("call"), m.get("manager")) else {
        return;
    };
    let sem = cx.sem;
    let Some(parent) = sem.parents.of(call) else {
        return;
    };
    let statement = match parent.kind() {
        "expression_statement" => parent,
        "assignment" => match sem.parents.of(parent) {
            Some(s) if s.kind() == "expression_statement" => s,
            _ => return,
        },
        _ => return,
    };
    let Some(block) = sem.parents.of(statement).filter(|b| b.kind() == "block") else {
        return;
    };
    if statements_in(block) != 1 {
        return;
    }
    let Some(guard) = sem.parents.of(block) else {
        return;
    };
    // Only a create alone under a guard gets here: inferring the manager costs more than that.
    let Ty::Manager(ty) = sem.ty(manager) else {
        return;
    };
    let (false, Some(ModelRef::Indexed(_))) = (ty.related, ty.model) else {
        return;
    };
    let Some(arguments) = keywords(sem, call) else {
        return;
    };
    let create = normalized(manager, sem.source);
    let class = manager
        .child_by_field_name("object")
        .map_or(String::new(), |o| normalized(o, sem.source));
    let get_or_create = format!(
        "{}.get_or_create{}",
        sem.text(manager),
        sem.text(call.child_by_field_name("arguments").unwrap_or(call))
    );
    let (checked, fix) = match guard.kind() {
        "if_statement" if checks_absence(sem, guard, &create, &arguments) => (
            "checking that the row does not exist",
            // `obj = ...create()` binds `obj` only when the row was missing; no rewrite keeps that.
            (parent.kind() == "expression_statement")
                .then(|| {
                    unsafe_fix(
                        sem,
                        guard,
                        get_or_create.clone(),
                        "get_or_create() raises MultipleObjectsReturned when several rows match, where exists() did not",
                    )
                })
                .flatten(),
        ),
        "if_statement" => return,
        "except_clause" => {
            let Some(fix) =
                get_then_create(sem, guard, statement, (&class, &create), &arguments, &get_or_create)
            else {
                return;
            };
            ("a failed `get()`", fix)
        }
        _ => return,
    };
    cx.report(
        call,
        format!(
            "`{}.create()` after {checked} is two queries and a race between them; use `get_or_create()`",
            sem.text(manager)
        ),
        fix,
    );
}

/// The keyword arguments of `call`, each normalised, sorted: two calls with the same set look
/// up and create the same row. `None` when there is a positional argument (a `Q` object).
fn keywords(sem: &Semantics, call: Node) -> Option<Vec<String>> {
    let args = call.child_by_field_name("arguments")?;
    let mut cursor = args.walk();
    let mut keywords = Vec::new();
    for arg in args.named_children(&mut cursor) {
        match arg.kind() {
            "comment" => {}
            "keyword_argument" | "dictionary_splat" => keywords.push(normalized(arg, sem.source)),
            _ => return None,
        }
    }
    keywords.sort();
    (!keywords.is_empty()).then_some(keywords)
}

/// `if not <manager>.filter(<same keywords>).exists():` with no `elif`/`else`.
fn checks_absence(sem: &Semantics, guard: Node, manager: &str, arguments: &[String]) -> bool {
    if guard.child_by_field_name("alternative").is_some() {
        return false;
    }
    let Some(condition) = guard.child_by_field_name("condition").map(strip_parens) else {
        return false;
    };
    if condition.kind() != "not_operator" {
        return false;
    }
    let Some(exists) = condition.child_by_field_name("argument").map(strip_parens) else {
        return false;
    };
    let Some((filter, "exists")) = method_call(exists, sem.source) else {
        return false;
    };
    let Some((receiver, "filter")) = method_call(filter, sem.source) else {
        return false;
    };
    normalized(receiver, sem.source) == manager
        && keywords(sem, filter).is_some_and(|k| k == arguments)
}

/// `try: obj = <manager>.get(<same keywords>)` / `except M.DoesNotExist: obj = <create>`, and
/// nothing else in the `try` statement: `obj, _ = <manager>.get_or_create(...)`.
fn get_then_create<'a>(
    sem: &Semantics<'a>,
    except: Node<'a>,
    statement: Node<'a>,
    (class, manager): (&str, &str),
    arguments: &[String],
    get_or_create: &str,
) -> Option<Option<Fix>> {
    let try_statement = sem.parents.of(except)?;
    let mut cursor = try_statement.walk();
    let clauses: Vec<Node> = try_statement
        .named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect();
    let [body, only_except] = clauses.as_slice() else {
        return None;
    };
    if only_except.id() != except.id() || body.kind() != "block" || statements_in(*body) != 1 {
        return None;
    }
    let (created_name, _) = simple_assignment(statement)?;
    let mut cursor = body.walk();
    let attempt = body
        .named_children(&mut cursor)
        .find(|s| s.kind() != "comment")?;
    let (got_name, get) = simple_assignment(attempt)?;
    let (receiver, "get") = method_call(get, sem.source)? else {
        return None;
    };
    if normalized(receiver, sem.source) != manager
        || keywords(sem, get).as_deref() != Some(arguments)
    {
        return None;
    }
    // `except Entry.DoesNotExist:` for the model being created.
    let caught = except
        .named_child(0)
        .map(|e| normalized(e, sem.source))
        .unwrap_or_default();
    if caught != format!("{class} . DoesNotExist") || class.is_empty() {
        return None;
    }
    let same_target =
        created_name.kind() == "identifier" && sem.text(created_name) == sem.text(got_name);
    if !same_target {
        return Some(None);
    }
    let flag = fresh_local(
        sem,
        try_statement,
        &["_".to_string(), "created".to_string()],
    );
    Some(flag.and_then(|flag| {
        unsafe_fix(
            sem,
            try_statement,
            format!("{}, {flag} = {get_or_create}", sem.text(created_name)),
            "get_or_create() runs create() in a savepoint and, after an IntegrityError, tries get() again",
        )
    }))
}

/// Statements in `block`, comments aside.
fn statements_in(block: Node) -> usize {
    let mut cursor = block.walk();
    let count = block
        .named_children(&mut cursor)
        .filter(|s| s.kind() != "comment")
        .count();
    count
}

/// `statement` replaced by `replacement`, comments inside it kept above; always unsafe.
fn unsafe_fix<'a>(
    sem: &Semantics<'a>,
    statement: Node<'a>,
    replacement: String,
    why: &str,
) -> Option<Fix> {
    if replacement.contains(['\n', '\r']) {
        return None;
    }
    let edit = replace_statements(sem, statement, statement, &replacement)?;
    Some(fix_unless(
        format!("Replace with `{replacement}`"),
        &[why.to_string()],
        vec![edit],
    ))
}
