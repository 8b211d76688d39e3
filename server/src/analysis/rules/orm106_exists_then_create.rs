//! ORM106 exists-then-create: `if not qs.filter(**kw).exists(): M.objects.create(**kw)`, or a
//! `get()` in `try` with `create()` in `except M.DoesNotExist`, is two queries with a race
//! between them; `M.objects.get_or_create(**kw)` says it in one call (and handles the race).
//! Keywords the create adds to a `get()`'s go to `defaults=`. Reported from the lookup to the
//! create.

use tree_sitter::Node;

use super::{Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Fix, Severity};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::loops::quote_style;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    method_call, normalized, simple_assignment, strip_parens, KindOf,
};
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
    let Some(created) = created_row(sem, call) else {
        return;
    };
    let Some(guard) = sem
        .parents
        .of(created.block)
        .filter(|g| matches!(g.kind_name(), "if_statement" | "except_clause"))
    else {
        return;
    };
    // Only a create alone under a guard gets here: inferring the manager costs more than that.
    let Ty::Manager(ty) = sem.ty(manager) else {
        return;
    };
    let (false, Some(ModelRef::Indexed(_))) = (ty.related, ty.model) else {
        return;
    };
    let Some(created_with) = keywords(sem, call) else {
        return;
    };
    // `defaults` would be read as get_or_create()'s own argument.
    if created_with.iter().any(|k| k.name == Some("defaults")) {
        return;
    }
    let create = Create {
        call,
        manager,
        keywords: created_with,
        outcome: created.outcome,
        statement: created.statement,
    };
    let finding = if guard.kind_name() == "if_statement" {
        exists_then_create(sem, guard, &create)
    } else {
        get_then_create(sem, guard, &create)
    };
    let Some(Finding {
        lookup,
        checked,
        fix,
    }) = finding
    else {
        return;
    };
    // From the lookup to the create: the pattern, which the fix replaces as a whole (and where
    // a reader looking for the first query starts).
    cx.report_span(
        lookup.start_byte()..call.end_byte(),
        format!(
            "`{}.create()` after {checked} is two queries and a race between them; use `get_or_create()`",
            sem.text(manager)
        ),
        fix,
    );
}

/// The guarded `create()` call and what becomes of the row it creates.
struct Create<'a> {
    call: Node<'a>,
    manager: Node<'a>,
    keywords: Vec<Keyword<'a>>,
    outcome: Outcome<'a>,
    /// The statement holding the call.
    statement: Node<'a>,
}

enum Outcome<'a> {
    /// `M.objects.create(...)`
    Discarded,
    /// `target = M.objects.create(...)`
    Bound(Node<'a>),
    /// `return M.objects.create(...)`, or `row = M.objects.create(...)` then `return row`
    /// (with that name).
    Returned(Option<Node<'a>>),
}

/// A `create()` alone in a block (or followed by the return of the name it is assigned to).
struct CreatedRow<'a> {
    block: Node<'a>,
    statement: Node<'a>,
    outcome: Outcome<'a>,
}

fn created_row<'a>(sem: &Semantics<'a>, call: Node<'a>) -> Option<CreatedRow<'a>> {
    let parent = sem.parents.of(call)?;
    let (statement, outcome) = match parent.kind_name() {
        "expression_statement" => (parent, Outcome::Discarded),
        "return_statement" => (parent, Outcome::Returned(None)),
        "assignment" => {
            let statement = sem
                .parents
                .of(parent)
                .filter(|s| s.kind_name() == "expression_statement")?;
            let (target, _) = simple_assignment(statement)?;
            (statement, Outcome::Bound(target))
        }
        _ => return None,
    };
    let block = sem
        .parents
        .of(statement)
        .filter(|b| b.kind_name() == "block")?;
    let outcome = match (statements_of(block).as_slice(), outcome) {
        ([only], outcome) if only.id() == statement.id() => outcome,
        ([first, then], Outcome::Bound(target)) if first.id() == statement.id() => {
            let returned = returned_name(*then)?;
            (target.kind_name() == "identifier" && sem.text(target) == sem.text(returned))
                .then_some(Outcome::Returned(Some(target)))?
        }
        _ => return None,
    };
    Some(CreatedRow {
        block,
        statement,
        outcome,
    })
}

/// `return name`: the name.
fn returned_name(statement: Node) -> Option<Node> {
    (statement.kind_name() == "return_statement")
        .then(|| statement.named_child(0))
        .flatten()
        .filter(|n| n.kind_name() == "identifier" && statement.named_child_count() == 1)
}

/// What the rule reports: the lookup that starts the pattern, what it checked, and the fix.
struct Finding<'a> {
    lookup: Node<'a>,
    checked: &'static str,
    fix: Option<Fix>,
}

/// One keyword argument (or `**kwargs`), normalised for comparison.
struct Keyword<'a> {
    node: Node<'a>,
    normalized: String,
    /// `None` for `**kwargs`.
    name: Option<&'a str>,
}

/// The keyword arguments of `call`. `None` when there is a positional argument (a `Q`
/// object) or none at all.
fn keywords<'a>(sem: &Semantics<'a>, call: Node<'a>) -> Option<Vec<Keyword<'a>>> {
    let args = call.field(&field::ARGUMENTS)?;
    let mut cursor = args.walk();
    let mut keywords = Vec::new();
    for arg in args.named_children(&mut cursor) {
        match arg.kind_name() {
            "comment" => {}
            "keyword_argument" | "dictionary_splat" => keywords.push(Keyword {
                node: arg,
                normalized: normalized(arg, sem.source),
                name: arg.field(&field::NAME).map(|n| sem.text(n)),
            }),
            _ => return None,
        }
    }
    (!keywords.is_empty()).then_some(keywords)
}

/// Whether the create looks the row up by every keyword of `lookup` (and perhaps sets more).
fn creates_what_was_looked_up(lookup: &[Keyword], create: &Create) -> bool {
    lookup
        .iter()
        .all(|l| create.keywords.iter().any(|c| c.normalized == l.normalized))
}

/// `if not <manager>.filter(<keywords>).exists(): <create>` with no `elif`/`else`.
fn exists_then_create<'a>(
    sem: &Semantics<'a>,
    guard: Node<'a>,
    create: &Create<'a>,
) -> Option<Finding<'a>> {
    if guard.field(&field::ALTERNATIVE).is_some() {
        return None;
    }
    let condition = guard.field(&field::CONDITION).map(strip_parens)?;
    if condition.kind_name() != "not_operator" {
        return None;
    }
    let exists = condition.field(&field::ARGUMENT).map(strip_parens)?;
    let (filter, "exists") = method_call(exists, sem.source)? else {
        return None;
    };
    let (receiver, "filter") = method_call(filter, sem.source)? else {
        return None;
    };
    let looked_up = keywords(sem, filter)?;
    // Only the same keywords: the spec leaves `defaults=` for a create that sets more to the
    // author (an existence check says less than a `get()` about which row is meant).
    if normalized(receiver, sem.source) != normalized(create.manager, sem.source)
        || !creates_what_was_looked_up(&looked_up, create)
        || looked_up.len() != create.keywords.len()
    {
        return None;
    }
    let fix = match create.outcome {
        // `obj = ...create()` binds `obj` only when the row was missing; no rewrite keeps that.
        Outcome::Bound(_) => None,
        Outcome::Discarded => get_or_create(sem, create, &looked_up).and_then(|(call, eager)| {
            unsafe_fix(
                sem,
                guard,
                call,
                "get_or_create() raises MultipleObjectsReturned when several rows match, where exists() did not",
                eager,
            )
        }),
        // The code after the `if` runs only when the row existed.
        Outcome::Returned(_) => return None,
    };
    Some(Finding {
        lookup: exists,
        checked: "checking that the row does not exist",
        fix,
    })
}

/// `try: <get>` / `except M.DoesNotExist: <create>`, and nothing else in the `try` statement,
/// where the `try` assigns or returns `<manager>.get(<keywords>)`. Fixed when both clauses give
/// the row the same way: `obj, _ = <get_or_create>` or `return <get_or_create>[0]`.
fn get_then_create<'a>(
    sem: &Semantics<'a>,
    except: Node<'a>,
    create: &Create<'a>,
) -> Option<Finding<'a>> {
    let try_statement = sem.parents.of(except)?;
    let mut cursor = try_statement.walk();
    let clauses: Vec<Node> = try_statement
        .named_children(&mut cursor)
        .filter(|c| c.kind_name() != "comment")
        .collect();
    let [body, only_except] = clauses.as_slice() else {
        return None;
    };
    if only_except.id() != except.id() || body.kind_name() != "block" {
        return None;
    }
    let [attempt] = statements_of(*body)[..] else {
        return None;
    };
    let (got_name, get) = if attempt.kind_name() == "return_statement" {
        (None, attempt.named_child(0)?)
    } else {
        let (target, value) = simple_assignment(attempt)?;
        (Some(target), value)
    };
    let (receiver, "get") = method_call(get, sem.source)? else {
        return None;
    };
    let looked_up = keywords(sem, get)?;
    let manager = normalized(create.manager, sem.source);
    if normalized(receiver, sem.source) != manager
        || !creates_what_was_looked_up(&looked_up, create)
    {
        return None;
    }
    // `except Entry.DoesNotExist:` for the model being created.
    let class = create
        .manager
        .field(&field::OBJECT)
        .map_or(String::new(), |o| normalized(o, sem.source));
    let caught = except
        .named_child(0)
        .map(|e| normalized(e, sem.source))
        .unwrap_or_default();
    if caught != format!("{class} . DoesNotExist") || class.is_empty() {
        return None;
    }
    let why = "get_or_create() runs create() in a savepoint and, after an IntegrityError, tries get() again";
    let replacement = match (got_name, &create.outcome) {
        // A create whose row is dropped leaves the name unbound: not this pattern.
        (_, Outcome::Discarded) => return None,
        (Some(got), Outcome::Bound(target))
            if target.kind_name() == "identifier" && sem.text(*target) == sem.text(got) =>
        {
            fresh_local(
                sem,
                try_statement,
                &["_".to_string(), "created".to_string()],
            )
            .map(|flag| (format!("{}, {flag} = ", sem.text(got)), ""))
        }
        (None, Outcome::Returned(None)) => Some(("return ".to_string(), "[0]")),
        (None, Outcome::Returned(Some(row))) if read_only_by_its_return(sem, *row, create) => {
            Some(("return ".to_string(), "[0]"))
        }
        // The row reaches the code after the statement one way and leaves the function the
        // other, or through two names: no one call says both.
        _ => None,
    };
    let fix = replacement.and_then(|(before, after)| {
        let (call, eager) = get_or_create(sem, create, &looked_up)?;
        unsafe_fix(
            sem,
            try_statement,
            format!("{before}{call}{after}"),
            why,
            eager,
        )
    });
    Some(Finding {
        lookup: get,
        checked: "a failed `get()`",
        fix,
    })
}

/// Whether the name the created row is assigned to before `return row` is a plain local read
/// by nothing but that return: then returning the row directly drops nothing.
fn read_only_by_its_return<'a>(sem: &Semantics<'a>, row: Node<'a>, create: &Create<'a>) -> bool {
    let name = sem.text(row);
    let scope = sem.scope_of(row);
    let Some(returned) = sem
        .parents
        .of(create.statement)
        .and_then(|block| statements_of(block).last().copied())
        .and_then(returned_name)
    else {
        return false;
    };
    // A `global`/`nonlocal` name has no reaching binding of this scope.
    scope.bindings(name).len() == 1
        && scope.references(name).len() == 1
        && scope.reaching(name, returned, &sem.parents).bindings.len() == 1
}

/// `<manager>.get_or_create(...)` with the create's keywords: those of the lookup as written,
/// the others under `defaults=`. Also whether some `defaults=` value is computed by more than
/// reading a name or a literal (it is then computed even when the row exists). `None` when a
/// keyword beyond the lookup's is `**kwargs`.
fn get_or_create(sem: &Semantics, create: &Create, lookup: &[Keyword]) -> Option<(String, bool)> {
    let manager = sem.text(create.manager);
    let (looked_up, defaults): (Vec<&Keyword>, Vec<&Keyword>) = create
        .keywords
        .iter()
        .partition(|c| lookup.iter().any(|l| l.normalized == c.normalized));
    if defaults.is_empty() {
        let arguments = create.call.field(&field::ARGUMENTS).unwrap_or(create.call);
        return Some((
            format!("{manager}.get_or_create{}", sem.text(arguments)),
            false,
        ));
    }
    let quote = quote_style(sem, create.call);
    let mut eager = false;
    let mut entries = Vec::new();
    for keyword in defaults {
        let value = keyword.node.field(&field::VALUE)?;
        let name = keyword.name?;
        eager |= !matches!(
            value.kind_name(),
            "identifier" | "string" | "integer" | "float" | "true" | "false" | "none"
        );
        entries.push(format!("{quote}{name}{quote}: {}", sem.text(value)));
    }
    let mut arguments: Vec<String> = looked_up
        .iter()
        .map(|k| sem.text(k.node).to_string())
        .collect();
    arguments.push(format!("defaults={{{}}}", entries.join(", ")));
    Some((
        format!("{manager}.get_or_create({})", arguments.join(", ")),
        eager,
    ))
}

/// Statements in `block`, comments aside.
fn statements_of(block: Node) -> Vec<Node> {
    let mut cursor = block.walk();
    let statements = block
        .named_children(&mut cursor)
        .filter(|s| s.kind_name() != "comment")
        .collect();
    statements
}

/// `statement` replaced by `replacement`, comments inside it kept above; always unsafe.
fn unsafe_fix<'a>(
    sem: &Semantics<'a>,
    statement: Node<'a>,
    replacement: String,
    why: &str,
    eager_defaults: bool,
) -> Option<Fix> {
    if replacement.contains(['\n', '\r']) {
        return None;
    }
    let edit = replace_statements(sem, statement, statement, &replacement)?;
    let mut hazards = vec![why.to_string()];
    if eager_defaults {
        hazards.push("the `defaults=` values are computed even when the row exists".to_string());
    }
    Some(fix_unless(
        format!("Replace with `{replacement}`"),
        &hazards,
        vec![edit],
    ))
}
