//! Small, allocation-free helpers over tree-sitter nodes. Every walk here is iterative: a file of
//! thousands of nested parentheses must not overflow a thread's stack.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHasher};
use tree_sitter::Node;

use field::FieldOf;

/// The fields of the grammar's nodes the analyzer asks for, each id looked up once:
/// `Node::child_by_field_name` looks the name up among all the grammar's field names on every
/// call, which cost 2% of a cold `check` and 6% of a keystroke's lint.
pub mod field {
    use std::sync::LazyLock;

    use tree_sitter::Node;

    pub struct Field(LazyLock<u16>);

    fn id(name: &str) -> u16 {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        language
            .field_id_for_name(name)
            .map(u16::from)
            .unwrap_or_else(|| panic!("`{name}` is not a field of the Python grammar"))
    }

    macro_rules! fields {
        ($($field:ident: $name:literal,)*) => {
            $(pub static $field: Field = Field(LazyLock::new(|| id($name)));)*
            #[cfg(test)]
            static ALL: &[&Field] = &[$(&$field),*];
        };
    }

    fields! {
        NAME: "name",
        FUNCTION: "function",
        OBJECT: "object",
        BODY: "body",
        ARGUMENTS: "arguments",
        ATTRIBUTE: "attribute",
        LEFT: "left",
        VALUE: "value",
        RIGHT: "right",
        PARAMETERS: "parameters",
        OPERATOR: "operator",
        CONDITION: "condition",
        SUPERCLASSES: "superclasses",
        SUBSCRIPT: "subscript",
        CONSEQUENCE: "consequence",
        TYPE: "type",
        KEY: "key",
        ALTERNATIVE: "alternative",
        ALIAS: "alias",
        DEFINITION: "definition",
        MODULE_NAME: "module_name",
        ARGUMENT: "argument",
        RETURN_TYPE: "return_type",
        EXPRESSION: "expression",
    }

    /// `node.field(&field::NAME)` is `node.child_by_field_name("name")`, asked by id.
    pub trait FieldOf<'t> {
        fn field(&self, field: &Field) -> Option<Node<'t>>;
    }

    impl<'t> FieldOf<'t> for Node<'t> {
        fn field(&self, field: &Field) -> Option<Node<'t>> {
            self.child_by_field_id(*field.0)
        }
    }

    #[test]
    fn every_field_is_one_of_the_grammar() {
        for field in ALL {
            LazyLock::force(&field.0);
        }
        let tree = crate::store::parse_python("def f(x):\n    return x\n").unwrap();
        let function = tree.root_node().child(0).unwrap();
        assert_eq!(function.field(&NAME), function.child_by_field_name("name"));
        assert_eq!(function.field(&BODY), function.child_by_field_name("body"));
    }
}

/// A node's kind by name, like `Node::kind`, which measures the name (a C string) and checks it
/// as UTF-8 on every call (5% of a keystroke's lint): here it is looked up by kind id in a
/// table made once.
pub trait KindOf {
    fn kind_name(&self) -> &'static str;
}

static KIND_NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
    (0..language.node_kind_count() as u16)
        .map(|id| language.node_kind_for_id(id).unwrap_or(""))
        .collect()
});

impl KindOf for Node<'_> {
    fn kind_name(&self) -> &'static str {
        // ERROR's id is outside the table.
        match KIND_NAMES.get(usize::from(self.kind_id())) {
            Some(name) => name,
            None => self.kind(),
        }
    }
}

/// Parent links, recorded as they are learnt. tree-sitter's `Node::parent` walks down from the
/// root on every call, scanning the root's children (one per top-level statement), and the rules
/// ask for parents constantly. Here a lookup binary-searches the top-level statement and walks
/// down from it once; scope indexing records the links of every node it visits.
pub struct Parents<'a> {
    root: Node<'a>,
    statements: Vec<Node<'a>>,
    links: RefCell<FxHashMap<usize, Node<'a>>>,
}

impl<'a> Parents<'a> {
    pub fn new(root: Node<'a>) -> Self {
        let mut cursor = root.walk();
        let statements = root.children(&mut cursor).collect();
        Self {
            root,
            statements,
            links: RefCell::default(),
        }
    }

    pub fn root(&self) -> Node<'a> {
        self.root
    }

    pub fn record(&self, child: Node<'a>, parent: Node<'a>) {
        self.links.borrow_mut().insert(child.id(), parent);
    }

    pub fn of(&self, node: Node<'a>) -> Option<Node<'a>> {
        if node.id() == self.root.id() {
            return None;
        }
        if let Some(parent) = self.links.borrow().get(&node.id()) {
            return Some(*parent);
        }
        let i = self
            .statements
            .partition_point(|s| s.end_byte() <= node.start_byte());
        let mut ancestor = *self.statements.get(i).filter(|s| contains(**s, node))?;
        self.record(ancestor, self.root);
        while ancestor.id() != node.id() {
            let child = ancestor.child_with_descendant(node)?;
            self.record(child, ancestor);
            ancestor = child;
        }
        self.links.borrow().get(&node.id()).copied()
    }
}

/// The ids tree-sitter gives the named node kind `name` (an alias adds one of its own).
/// Comparing ids on the hottest walks skips `Node::kind`, which measures and checks the kind's
/// name as UTF-8 on every call.
pub fn kind_ids(name: &str) -> Vec<u16> {
    let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
    (0..language.node_kind_count() as u16)
        .filter(|&id| {
            language.node_kind_is_named(id) && language.node_kind_for_id(id) == Some(name)
        })
        .collect()
}

pub fn text<'s>(node: Node, source: &'s str) -> &'s str {
    source.get(node.byte_range()).unwrap_or("")
}

/// The function or class a decorated definition wraps; any other node itself.
pub fn undecorated(node: Node) -> Node {
    if node.kind_name() == "decorated_definition" {
        node.field(&field::DEFINITION).unwrap_or(node)
    } else {
        node
    }
}

/// The decorators of a `decorated_definition` as written, without `@` (`["classmethod"]`,
/// `["admin.display(description=\"x\")"]`); none for any other node.
pub fn decorator_names<'s>(decorated: Node, source: &'s str) -> Vec<&'s str> {
    if decorated.kind_name() != "decorated_definition" {
        return Vec::new();
    }
    let mut cursor = decorated.walk();
    let names = decorated
        .named_children(&mut cursor)
        .filter(|d| d.kind_name() == "decorator")
        .map(|d| source[d.byte_range()].trim_start_matches('@').trim())
        .collect();
    names
}

/// `((x))` -> `x`.
pub fn strip_parens(mut node: Node) -> Node {
    while node.kind_name() == "parenthesized_expression" {
        match node.named_child(0) {
            Some(inner) if inner.kind_name() != "comment" => node = inner,
            _ => break,
        }
    }
    node
}

/// The node's parent, looking through parentheses: the context the value is used in.
pub fn parent_through_parens<'a>(node: Node<'a>, p: &Parents<'a>) -> Option<Node<'a>> {
    let mut parent = p.of(node)?;
    while parent.kind_name() == "parenthesized_expression" {
        parent = p.of(parent)?;
    }
    Some(parent)
}

/// Expressions that bind tighter than any operator: `x.f()` can be appended to them as they are.
pub fn is_primary(node: Node) -> bool {
    matches!(
        node.kind_name(),
        "identifier" | "attribute" | "call" | "subscript" | "parenthesized_expression"
    )
}

/// Source of `node` ready to have `.method()` appended, and to stand anywhere an expression
/// can: a chain broken over lines inside a call's brackets (`len(Entry.objects\n.filter())`)
/// is parenthesised, since out of those brackets its line break would end the statement.
pub fn as_receiver(node: Node, source: &str) -> String {
    let t = text(node, source);
    if is_primary(node) && !breaks_line_outside_brackets(node) {
        t.to_string()
    } else {
        format!("({t})")
    }
}

/// Whether `node`'s text has a line break outside any bracket of its own: moved to where no
/// bracket encloses it, it needs parentheses to stay one expression.
pub fn breaks_line_outside_brackets(node: Node) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.kind_name() == "string" {
            continue;
        }
        let mut depth = 0usize;
        let mut previous: Option<Node> = None;
        let mut cursor = n.walk();
        for child in n.children(&mut cursor) {
            let kind = child.kind_name();
            if matches!(kind, ")" | "]" | "}") {
                depth = depth.saturating_sub(1);
            } else if depth == 0 {
                if previous.is_some_and(|p| p.end_position().row < child.start_position().row) {
                    return true;
                }
                stack.push(child);
            }
            if matches!(kind, "(" | "[" | "{") {
                depth += 1;
            }
            previous = Some(child);
        }
    }
    false
}

pub fn is_scope(node: Node) -> bool {
    matches!(
        node.kind_name(),
        "function_definition" | "lambda" | "class_definition" | "module"
    )
}

/// The function, lambda, class body or module whose names `node` reads. A function's name and
/// decorators belong to the scope that defines it; its parameters and body to its own (default
/// values are read outside, but counting them inside only adds reads, which errs on the silent
/// side).
pub fn enclosing_scope<'a>(node: Node<'a>, p: &Parents<'a>) -> Node<'a> {
    let mut current = node;
    while let Some(parent) = p.of(current) {
        let opens_scope = match parent.kind_name() {
            "function_definition" => [&field::BODY, &field::PARAMETERS]
                .iter()
                .any(|f| parent.field(f).is_some_and(|b| b.id() == current.id())),
            "class_definition" => parent
                .field(&field::BODY)
                .is_some_and(|b| b.id() == current.id()),
            "lambda" | "module" => true,
            _ => false,
        };
        if opens_scope {
            return parent;
        }
        current = parent;
    }
    current
}

/// The statement of `scope` that contains `node`: an ancestor whose parent is a block or module.
pub fn enclosing_statement<'a>(node: Node<'a>, p: &Parents<'a>) -> Node<'a> {
    let mut current = node;
    while let Some(parent) = p.of(current) {
        if matches!(parent.kind_name(), "block" | "module") {
            return current;
        }
        current = parent;
    }
    current
}

/// `outer` contains `inner` (or is it). By byte range: two distinct nodes with the same range are
/// a node and its only child, which is as good as containment for every use here.
pub fn contains(outer: Node, inner: Node) -> bool {
    outer.start_byte() <= inner.start_byte() && inner.end_byte() <= outer.end_byte()
}

/// Loops (and comprehensions) between `node` and `scope` whose repeated part contains `node`:
/// code there may run many times. The iterable of a `for` runs once, so it is not inside.
pub fn enclosing_loops<'a>(node: Node<'a>, scope: Node<'a>, p: &Parents<'a>) -> Vec<Node<'a>> {
    let mut loops = Vec::new();
    let mut child = node;
    while let Some(parent) = p.of(child) {
        if parent.id() == scope.id() {
            break;
        }
        let repeats = match parent.kind_name() {
            "for_statement" => parent
                .field(&field::BODY)
                .is_some_and(|b| b.id() == child.id()),
            "while_statement" => true,
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => first_iterable(parent).is_none_or(|it| !contains(it, node)),
            _ => false,
        };
        if repeats {
            loops.push(parent);
        }
        child = parent;
    }
    loops
}

/// The iterable of a comprehension's first `for`: evaluated once, in the enclosing scope.
pub fn first_iterable(comprehension: Node) -> Option<Node> {
    let mut cursor = comprehension.walk();
    let clause = comprehension
        .named_children(&mut cursor)
        .find(|c| c.kind_name() == "for_in_clause")?;
    clause.field(&field::RIGHT)
}

/// Calls `visit` on `root` and its descendants in document order; `visit` returns whether to
/// descend into the node's children.
pub fn walk<'t>(root: Node<'t>, mut visit: impl FnMut(Node<'t>) -> bool) {
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if visit(node) && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node().id() == root.id() {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// The tokens of `node` joined by single spaces: two expressions are written the same way when
/// this is equal, whatever their spacing, line breaks, comments and trailing commas.
pub fn normalized(node: Node, source: &str) -> String {
    let mut out = String::new();
    walk(node, |n| {
        if n.kind_name() == "comment" {
            return false;
        }
        let trailing_comma = n.kind_name() == ","
            && n.next_sibling()
                .is_none_or(|s| matches!(s.kind_name(), ")" | "]" | "}"));
        if n.child_count() == 0 && !trailing_comma {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(text(n, source));
        }
        true
    });
    out
}

/// The method name of a call `recv.method(...)`, with its receiver.
pub fn method_call<'t>(call: Node<'t>, source: &'t str) -> Option<(Node<'t>, &'t str)> {
    if call.kind_name() != "call" {
        return None;
    }
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "attribute" {
        return None;
    }
    let receiver = function.field(&field::OBJECT)?;
    let name = function.field(&field::ATTRIBUTE)?;
    Some((receiver, text(name, source)))
}

/// The arguments of `call` when there are none: `qs.count()`.
pub fn has_no_arguments(call: Node) -> bool {
    call.field(&field::ARGUMENTS)
        .is_some_and(|args| args.kind_name() == "argument_list" && args.named_child_count() == 0)
}

/// `f(x)` with exactly one positional argument and a plain function name: returns (`f`, `x`).
pub fn single_argument_call<'t>(call: Node<'t>, source: &'t str) -> Option<(&'t str, Node<'t>)> {
    if call.kind_name() != "call" {
        return None;
    }
    let function = call.field(&field::FUNCTION)?;
    if function.kind_name() != "identifier" {
        return None;
    }
    let args = call.field(&field::ARGUMENTS)?;
    if args.kind_name() != "argument_list" {
        return None;
    }
    let mut cursor = args.walk();
    let mut named = args
        .named_children(&mut cursor)
        .filter(|c| c.kind_name() != "comment");
    let only = named.next()?;
    if named.next().is_some()
        || matches!(
            only.kind_name(),
            "keyword_argument" | "list_splat" | "dictionary_splat"
        )
    {
        return None;
    }
    Some((text(function, source), only))
}

/// Where `node` (an expression) is tested for truth: an `if`/`elif`/`while` condition, the test of
/// a conditional expression or comprehension `if`, `assert`, the operand of `not` or `bool()`,
/// and either side of `and`/`or` inside one of those.
pub fn is_truth_tested<'a>(node: Node<'a>, source: &str, p: &Parents<'a>) -> bool {
    let is = |n: Option<Node>, child: Node| n.is_some_and(|n| n.id() == child.id());
    let mut child = node;
    while let Some(parent) = p.of(child) {
        match parent.kind_name() {
            // Outside a truth test, `a or b` returns an operand itself: only its context counts.
            "parenthesized_expression" | "boolean_operator" => {}
            "if_statement" | "elif_clause" | "while_statement" => {
                return is(parent.field(&field::CONDITION), child);
            }
            "conditional_expression" => {
                // `a if cond else b`: the middle expression is the condition.
                let mut cursor = parent.walk();
                let cond = parent
                    .named_children(&mut cursor)
                    .filter(|c| c.kind_name() != "comment")
                    .nth(1);
                return is(cond, child);
            }
            "assert_statement" => return is(parent.named_child(0), child),
            "if_clause" | "not_operator" => return true,
            "argument_list" => {
                return p.of(parent).is_some_and(|call| {
                    single_argument_call(call, source)
                        .is_some_and(|(f, arg)| f == "bool" && arg.id() == child.id())
                });
            }
            _ => return false,
        }
        child = parent;
    }
    false
}

/// `not <expr>`, to replace `node`: parenthesised where `node`'s context binds tighter than `not`.
pub fn negated<'a>(expr: &str, node: Node<'a>, p: &Parents<'a>) -> String {
    let loose_context = p.of(node).is_none_or(|parent| {
        matches!(
            parent.kind_name(),
            "parenthesized_expression"
                | "if_statement"
                | "elif_clause"
                | "while_statement"
                | "not_operator"
                | "boolean_operator"
                | "conditional_expression"
                | "assignment"
                | "augmented_assignment"
                | "return_statement"
                | "argument_list"
                | "keyword_argument"
                | "expression_statement"
                | "assert_statement"
                | "lambda"
                | "list"
                | "tuple"
                | "set"
                | "pair"
                | "expression_list"
                | "yield"
                | "if_clause"
        )
    });
    if loose_context {
        format!("not {expr}")
    } else {
        format!("(not {expr})")
    }
}

/// `left = right` as a statement of its own: its two sides.
pub fn simple_assignment(statement: Node) -> Option<(Node, Node)> {
    let assignment = statement
        .named_child(0)
        .filter(|a| a.kind_name() == "assignment")?;
    Some((
        assignment.field(&field::LEFT)?,
        assignment.field(&field::RIGHT)?,
    ))
}

/// The whitespace before `node` on its line, if only whitespace precedes it there.
pub fn indentation<'s>(source: &'s str, node: Node) -> Option<&'s str> {
    let start = node.start_byte();
    let line_start = source[..start].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let indent = &source[line_start..start];
    indent
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(indent)
}

/// The line ending the line of `node` uses (`\r\n` files keep theirs), `\n` by default.
pub fn line_ending(source: &str, node: Node) -> &'static str {
    match source[node.start_byte()..].find('\n') {
        Some(i) if source[..node.start_byte() + i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// Where `statement` ends, before the `\r` of a CRLF line ending that a trailing comment takes
/// into its node: edits there keep the line's `\r\n` whole.
pub fn statement_end(source: &str, statement: Node) -> usize {
    let end = statement.end_byte();
    if source[..end].ends_with('\r') {
        end - 1
    } else {
        end
    }
}

/// The edit that puts `line` on its own line just above `statement`, at its indentation.
/// `None` when something other than whitespace precedes the statement on its line (`a; b`).
pub fn insert_above(source: &str, statement: Node, line: &str) -> Option<super::diagnostic::Edit> {
    let at = statement.start_byte();
    let indent = indentation(source, statement)?;
    let text = format!("{line}{}{indent}", line_ending(source, statement));
    Some(super::diagnostic::Edit::replace(at..at, text))
}

/// A name `source` does not use yet, from `wanted`: `wanted`, `wanted_2`, ...; for names that
/// are not locals (an attribute, a `to_attr`) or that reach outside one scope. A word anywhere
/// in the text counts as used (strings and comments too, which only errs on the safe side): a
/// text search, where walking every node of a large file for each fix showed on keystrokes
/// (fixes that edit outside their statement are recomputed on every lint).
pub fn unused_name(source: &str, wanted: &str) -> String {
    let mut name = wanted.to_string();
    let mut i = 2;
    while used_as_word(source, &name) {
        name = format!("{wanted}_{i}");
        i += 1;
    }
    name
}

fn used_as_word(source: &str, word: &str) -> bool {
    let is_ident = |c: char| c == '_' || c.is_alphanumeric();
    memchr::memmem::find_iter(source.as_bytes(), word.as_bytes()).any(|at| {
        let before = source[..at].chars().next_back();
        let after = source[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The one `return` statement of `definition`'s own body (not of functions or classes inside
/// it), when it has exactly one.
pub fn only_return(definition: Node) -> Option<Node> {
    let mut returns = Vec::new();
    walk(definition, |n| {
        if n.kind_name() == "return_statement" {
            returns.push(n);
        }
        n.id() == definition.id()
            || !matches!(
                n.kind_name(),
                "function_definition" | "lambda" | "class_definition"
            )
    });
    match returns.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// `instance.relation.method(...)`: the instance, the relation's name node and the method, for
/// the rules that read a call on a relation manager (`row.tags.all()`, `row.tags.filter(...)`).
pub fn relation_method_call<'t>(
    call: Node<'t>,
    source: &'t str,
) -> Option<(Node<'t>, Node<'t>, &'t str)> {
    let (manager, method) = method_call(strip_parens(call), source)?;
    if manager.kind_name() != "attribute" {
        return None;
    }
    Some((
        manager.field(&field::OBJECT)?,
        manager.field(&field::ATTRIBUTE)?,
        method,
    ))
}

/// What tells the bytes `range` of `node` from others for their analysis, for the caches
/// keyed by a statement's text: the text, and, where it holds a syntax error, the shape of its
/// tree. Error recovery reads the text around a statement: the same broken text can be a call
/// in one file and an error in another. An error elsewhere in `node` (in a method, for the
/// header of the class holding it) changes nothing here.
pub fn parse_hash(node: Node, range: Range<usize>, source: &str) -> u64 {
    let mut hasher = FxHasher::default();
    source[range.clone()].hash(&mut hasher);
    if node.has_error() {
        let mut shape = FxHasher::default();
        if hash_shape(node, &range, &mut shape) {
            shape.finish().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The kinds and places (from `range.start`) of the nodes of `node`'s tree within `range`,
/// down to those without errors (their shape follows from their text). Returns whether one of
/// them holds an error.
fn hash_shape(node: Node, range: &Range<usize>, hasher: &mut FxHasher) -> bool {
    let mut holds_error = false;
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.end_byte() <= range.start || child.start_byte() >= range.end {
                continue;
            }
            child.kind_id().hash(hasher);
            child.start_byte().wrapping_sub(range.start).hash(hasher);
            child.end_byte().wrapping_sub(range.start).hash(hasher);
            if child.has_error() {
                holds_error = true;
                pending.push(child);
            }
        }
    }
    holds_error
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large class's header is a cache key of its methods: a half-typed line in one method
    /// must not change it, or every method is linted again.
    #[test]
    fn kind_names_are_those_tree_sitter_gives() {
        // Every kind of a module with aliases (`as_pattern`), errors and missing nodes.
        let source = "import a.b as c\nwith open(x) as f:\n    pass\ndef f(:\n    return [x for x in y if (\nclass C(A, metaclass=M):\n    x: int = 1\n";
        let tree = crate::store::parse_python(source).unwrap();
        let mut cursor = tree.walk();
        let mut seen = 0;
        loop {
            let node = cursor.node();
            assert_eq!(node.kind_name(), node.kind());
            seen += 1;
            if cursor.goto_first_child() {
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    assert!(seen > 50 && tree.root_node().has_error());
                    return;
                }
            }
        }
    }

    #[test]
    fn an_error_outside_the_range_leaves_its_hash_alone() {
        let class = |typed: &str| {
            format!("class Report(Base):\n    def a(self):\n        x = 1 {typed}\n\n    def b(self):\n        return 2\n")
        };
        let hashes = |source: &str| {
            let tree = crate::store::parse_python(source).unwrap();
            let class = tree.root_node().named_child(0).unwrap();
            let body = class.field(&field::BODY).unwrap();
            let header = parse_hash(class, class.start_byte()..body.start_byte(), source);
            let whole = parse_hash(class, class.byte_range(), source);
            (tree.root_node().has_error(), header, whole)
        };
        let (clean_error, clean_header, clean_whole) = hashes(&class(""));
        let (broken_error, broken_header, broken_whole) = hashes(&class(">"));
        assert!(!clean_error && broken_error);
        assert_eq!(clean_header, broken_header);
        assert_ne!(clean_whole, broken_whole);
    }
}
