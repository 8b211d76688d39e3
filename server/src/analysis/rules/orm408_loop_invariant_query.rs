//! ORM408 loop-invariant-query: a query inside a loop whose arguments do not change with the
//! loop, in a loop that writes nothing, returns the same answer every time. Run it once above
//! the loop. Hint severity: the loop may be short, and hoisting runs the query even when the
//! loop runs zero times.

use super::orm404_query_in_loop::short;
use super::{orm105_count_after_evaluation, Captures, Rule, RuleContext, RuleMeta};
use crate::analysis::diagnostic::{Applicability, Edit, Fix, Severity};
use crate::analysis::infer::{Semantics, Ty};
use crate::analysis::loop_queries::query_in_loop;
use crate::analysis::syntax::{
    breaks_line_outside_brackets,
    field::{self, FieldOf},
    insert_above, method_call, unused_name, KindOf,
};
use tree_sitter::Node;

pub static RULE: Rule = Rule {
    meta: &RuleMeta {
        code: "ORM408",
        name: "loop-invariant-query",
        severity: Severity::Hint,
    },
    query: include_str!("../../../../queries/orm408_loop_invariant_query.scm"),
    check,
};

fn check<'a>(cx: &mut RuleContext<'_, 'a>, m: &Captures<'_, 'a>) {
    let Some(call) = m.get("call") else {
        return;
    };
    let Some(query) = query_in_loop(cx.sem, call) else {
        return;
    };
    if orm105_count_after_evaluation::owns(cx.sem, cx.settings, call) {
        return;
    }
    if query.depends_on_loop
        || query.loop_writes
        || repeats_on_purpose(cx.sem, query.loop_node)
        || loaded_once(cx.sem, call, query.loop_node)
    {
        return;
    }
    let text = short(cx.sem.text(call));
    let fix = if query.loop_node.kind_name() == "for_statement" {
        let name = unused_name(cx.sem.source, &hoisted_name(cx.sem, call));
        // Out of the brackets it sat in, a chain broken over lines needs its own.
        let query_text = if breaks_line_outside_brackets(call) {
            format!("({})", cx.sem.text(call))
        } else {
            cx.sem.text(call).to_string()
        };
        let hoisted = format!("{name} = {query_text}");
        insert_above(cx.sem.source, query.loop_node, &hoisted).map(|above| Fix {
            title: format!("Run it once above the loop as `{name}` (unsafe: it then runs even when the loop does not, and before the loop's other work)"),
            applicability: Applicability::Unsafe,
            edits: vec![above, Edit::replace(call.byte_range(), name)],
        })
    } else {
        None
    };
    cx.report(
        call,
        format!("`{text}` runs the same query on every iteration of the loop; run it once before the loop"),
        fix,
    );
}

/// What the hoisted value is called: `setting_count`, `first_setting`, `setting` (for `get`).
fn hoisted_name<'a>(sem: &Semantics<'a>, call: Node<'a>) -> String {
    let Some((receiver, method)) = method_call(call, sem.source) else {
        return "result".to_string();
    };
    let model = match sem.ty(receiver) {
        Ty::Manager(m) => m.model,
        Ty::QuerySet(q) => q.model,
        _ => None,
    };
    let model = model.map_or("row".to_string(), |m| {
        let label = sem.model_label(&m);
        label.rsplit('.').next().unwrap_or(&label).to_lowercase()
    });
    match method {
        "get" => model,
        "first" | "last" | "earliest" | "latest" => format!("{method}_{model}"),
        "in_bulk" => format!("{model}_by_pk"),
        _ => format!("{model}_{method}"),
    }
}

/// `for _ in range(10):` runs its body again on purpose (a benchmark, a retry): the same query
/// each time is the point.
fn repeats_on_purpose<'a>(sem: &Semantics<'a>, loop_node: Node<'a>) -> bool {
    let target = match loop_node.kind_name() {
        "for_statement" => loop_node.field(&field::LEFT),
        _ => {
            let mut cursor = loop_node.walk();
            let clause = loop_node
                .named_children(&mut cursor)
                .find(|c| c.kind_name() == "for_in_clause");
            clause.and_then(|c| c.field(&field::LEFT))
        }
    };
    target.is_some_and(|t| sem.text(t).starts_with('_'))
}

/// `if not node: node = Node.objects.get(...)` (or `if node is None:`) in the loop: the query
/// fills a name the first time it is needed and the test skips it afterwards, so it runs at
/// most once.
fn loaded_once<'a>(sem: &Semantics<'a>, call: Node<'a>, loop_node: Node<'a>) -> bool {
    let Some(statement) = sem
        .parents
        .of(call)
        .filter(|a| a.kind_name() == "assignment")
        .and_then(|a| a.field(&field::LEFT))
        .filter(|left| left.kind_name() == "identifier")
    else {
        return false;
    };
    let name = sem.text(statement);
    let mut node = call;
    while let Some(parent) = sem.parents.of(node) {
        if parent.id() == loop_node.id() {
            return false;
        }
        if parent.kind_name() == "if_statement" {
            let tests_the_name = parent.field(&field::CONDITION).is_some_and(|c| {
                let condition = sem.text(c);
                condition == format!("not {name}") || condition == format!("{name} is None")
            });
            if tests_the_name {
                return true;
            }
        }
        node = parent;
    }
    false
}
