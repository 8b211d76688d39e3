//! The SQL a QuerySet expression runs, as Django's `str(qs.query)` prints it (hover shows it).
//!
//! The inferred type knows the model; the lookups, `Q` objects, orderings and slices are read
//! from the call chain itself, from `Model.objects` outwards, and replayed the way Django's
//! `Query` builds them (the joins they need in `joins`). Only what renders exactly is rendered:
//! anything else (an `exclude()` across a to-many relation, a custom manager, a chain built
//! elsewhere) gives the reason instead, so that hover never shows SQL Django would not run.
//! Values that are not literals show as `%s`; `str()` prints parameters unquoted, and so does
//! this.

use tree_sitter::Node;

use crate::analysis::index::{string_value, Field, FieldKind, Model, ModelId, ModelIndex};
use crate::analysis::infer::{ModelRef, Semantics, Ty};
use crate::analysis::scope::BindingKind;
use crate::analysis::syntax::{
    field::{self, FieldOf},
    strip_parens, text, KindOf,
};

mod joins;
mod methods;
mod prefetch;

use joins::{Alias, JoinPromoter, JoinType, Joins};
pub use methods::{sql_of_call, sql_of_save};
pub use prefetch::{prefetch_queries_of, PrefetchQuery};

/// The compiler whose `str(qs.query)` is reproduced. They differ in quoting, in the `LIKE`
/// lookups, in booleans, in LIMIT and OFFSET and in the GROUP BY, among the constructs rendered
/// here; Oracle also treats `''` as NULL and compares a `TextField` (a LOB) through
/// `DBMS_LOB.SUBSTR`. MySQL is rendered as Django prints it for MySQL 8 (not MariaDB), Oracle
/// for Oracle 19 (a version before 23 has no boolean expressions in a WHERE clause).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgresql,
    Mysql,
    Oracle,
}

/// Django releases print `values()` differently: since 5.2 each named column carries its name
/// (`"t"."title" AS "title"`) and the ORDER BY refers to such a column by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    Before5_2,
    Since5_2,
}

/// Whose `str(qs.query)` is reproduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub dialect: Dialect,
    pub release: Release,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgresql => "PostgreSQL",
            Dialect::Mysql => "MySQL",
            Dialect::Oracle => "Oracle",
        }
    }

    /// The value of the `sql-dialect` setting.
    pub fn parse(setting: &str) -> Option<Self> {
        match setting {
            "sqlite" => Some(Dialect::Sqlite),
            "postgresql" => Some(Dialect::Postgresql),
            "mysql" => Some(Dialect::Mysql),
            "oracle" => Some(Dialect::Oracle),
            _ => None,
        }
    }

    /// A table, column or alias name as the backend's `quote_name` prints it. Oracle's is
    /// upper-cased, and one longer than 30 characters is cut and given a hash, which is not
    /// reproduced: such a name is marked with `UNQUOTABLE`, and `render` declines its SQL.
    fn quote(self, name: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgresql => format!("\"{name}\""),
            Dialect::Mysql => format!("`{name}`"),
            Dialect::Oracle if name.chars().count() > ORACLE_NAME_LENGTH || name.contains('%') => {
                format!("\"{UNQUOTABLE}{}\"", name.to_uppercase())
            }
            Dialect::Oracle => format!("\"{}\"", name.to_uppercase()),
        }
    }

    /// The dialect of a database `ENGINE`; `Err` names a backend whose SQL is not rendered.
    pub fn of_engine(engine: &str) -> Result<Self, String> {
        match engine {
            "django.db.backends.sqlite3" => Ok(Dialect::Sqlite),
            "django.db.backends.postgresql" | "django.db.backends.postgresql_psycopg2" => {
                Ok(Dialect::Postgresql)
            }
            "django.db.backends.mysql" => Ok(Dialect::Mysql),
            "django.db.backends.oracle" => Ok(Dialect::Oracle),
            other => Err(format!("the database backend `{other}` is not rendered")),
        }
    }
}

/// The longest name Oracle's `quote_name` leaves whole (`max_name_length`).
const ORACLE_NAME_LENGTH: usize = 30;

/// The most values Oracle takes in one `IN (...)` (`max_in_list_size`): Django ORs longer lists
/// as several.
const ORACLE_IN_LIST_SIZE: usize = 1000;

/// Marks a name `Dialect::quote` cannot print as Django would (a character no name from a
/// model's source holds).
const UNQUOTABLE: char = '\u{0}';

/// The `ENGINE` of `DATABASES["default"]` that each assignment of `DATABASES` in a settings
/// module names: `Some` for a literal (`DATABASES = {"default": {"ENGINE": "..."}}` at module
/// level), `None` for any other (built by a function, changed by key, under a condition), which
/// leaves the engine unknown.
pub fn database_engines(source: &str, root: Node) -> Vec<Option<String>> {
    let mut engines = Vec::new();
    crate::analysis::syntax::walk(root, |node| {
        if !matches!(node.kind_name(), "assignment" | "augmented_assignment") {
            return true;
        }
        let Some(left) = node.field(&field::LEFT) else {
            return true;
        };
        let written = text(left, source);
        if written != "DATABASES" && !written.starts_with("DATABASES[") {
            return true;
        }
        let at_module_level = node
            .parent()
            .and_then(|statement| statement.parent())
            .is_some_and(|parent| parent.kind_name() == "module");
        let literal = node
            .field(&field::RIGHT)
            .filter(|_| {
                written == "DATABASES" && at_module_level && node.kind_name() == "assignment"
            })
            .and_then(|databases| dictionary_entry(databases, source, "default"))
            .and_then(|default| dictionary_entry(default, source, "ENGINE"))
            .and_then(|engine| string_value(engine, source));
        engines.push(literal);
        false
    });
    engines
}

/// The value of `key` in a dictionary literal.
fn dictionary_entry<'a>(dictionary: Node<'a>, source: &str, key: &str) -> Option<Node<'a>> {
    if dictionary.kind_name() != "dictionary" {
        return None;
    }
    let mut cursor = dictionary.walk();
    let pair = dictionary.named_children(&mut cursor).find(|pair| {
        pair.kind_name() == "pair"
            && pair
                .field(&field::KEY)
                .and_then(|k| string_value(k, source))
                .is_some_and(|k| k == key)
    });
    pair.and_then(|p| p.field(&field::VALUE))
}

/// The SQL of the QuerySet `expr` evaluates to: `None` when it is not a QuerySet (or manager)
/// of a known model, `Some(Err(reason))` when it is one whose SQL cannot be shown exactly.
pub fn sql_of<'a>(
    sem: &Semantics<'a>,
    expr: Node<'a>,
    target: Target,
) -> Option<Result<String, String>> {
    Some(model_of_queryset(sem, expr)?.and_then(|model| render(sem, expr, model, target)))
}

/// The model of the QuerySet (or manager) `expr`: `None` when it is none, `Some(Err(...))`
/// when its model is not one the index knows.
fn model_of_queryset<'a>(sem: &Semantics<'a>, expr: Node<'a>) -> Option<Result<ModelId, String>> {
    let model = match sem.ty(expr) {
        Ty::QuerySet(q) => q.model,
        Ty::Manager(m) => m.model,
        _ => return None,
    };
    Some(match model {
        Some(ModelRef::Indexed(model)) => Ok(model),
        _ => Err("the model is not known".into()),
    })
}

/// One step of the chain, innermost first.
enum Step<'a> {
    /// `row.books`: the related manager of an instance of the model, by the relation's name.
    Related(ModelId, &'a str),
    Call(&'a str, Node<'a>),
    Slice(Node<'a>),
}

fn render<'a>(
    sem: &Semantics<'a>,
    expr: Node<'a>,
    model: ModelId,
    target: Target,
) -> Result<String, String> {
    let table = Table::of(sem.index(), model)?;
    build(sem, expr, &table, target)?.sql(target)
}

/// The query the chain `expr` builds on `table`'s model.
fn build<'s, 'a>(
    sem: &'s Semantics<'a>,
    expr: Node<'a>,
    table: &'s Table<'a>,
    target: Target,
) -> Result<Query<'s, 'a>, String> {
    let mut query = Query::new(sem, table, target.dialect);
    for step in chain(sem, expr, table.id)? {
        if query.limit.is_some() {
            return Err("steps after a slice are not rendered".into());
        }
        match step {
            Step::Related(owner, name) => query.related_manager(owner, name)?,
            Step::Slice(slice) => query.limit = Some(limits(slice, sem.source)?),
            Step::Call(method, arguments) => query.apply(method, arguments)?,
        }
    }
    Ok(query)
}

/// The calls from `Model.objects` (the default manager), or from a related manager
/// (`row.books`), to `expr`.
fn chain<'a>(sem: &Semantics<'a>, expr: Node<'a>, model: ModelId) -> Result<Vec<Step<'a>>, String> {
    let mut steps = Vec::new();
    let mut node = strip_parens(expr);
    let mut hops = 0;
    loop {
        match node.kind_name() {
            "call" => {
                let function = node.field(&field::FUNCTION).unwrap_or(node);
                let arguments = node.field(&field::ARGUMENTS);
                let (Some(arguments), "attribute") = (arguments, function.kind_name()) else {
                    return Err("the QuerySet is not built by a chain of calls".into());
                };
                let (Some(object), Some(method)) = (
                    function.field(&field::OBJECT),
                    function.field(&field::ATTRIBUTE),
                ) else {
                    return Err("the QuerySet is not built by a chain of calls".into());
                };
                steps.push(Step::Call(text(method, sem.source), arguments));
                node = strip_parens(object);
            }
            "subscript" => {
                let (Some(value), Some(slice)) =
                    (node.field(&field::VALUE), node.field(&field::SUBSCRIPT))
                else {
                    return Err("the QuerySet is not built by a chain of calls".into());
                };
                steps.push(Step::Slice(slice));
                node = strip_parens(value);
            }
            "attribute" => {
                let manager = node.field(&field::ATTRIBUTE);
                let object = node.field(&field::OBJECT);
                if let (Some(object), Some(manager)) = (object, manager) {
                    if let Ty::Instance(ModelRef::Indexed(owner)) = sem.ty(object) {
                        steps.push(Step::Related(owner, text(manager, sem.source)));
                        steps.reverse();
                        return Ok(steps);
                    }
                }
                let on_class = node
                    .field(&field::OBJECT)
                    .is_some_and(|o| matches!(sem.ty(o), Ty::ModelClass(_)));
                if !on_class || manager.map(|m| text(m, sem.source)) != Some("objects") {
                    return Err("only chains from `Model.objects` are rendered".into());
                }
                let custom = sem
                    .index()
                    .model(model)
                    .manager("objects")
                    .is_some_and(|m| !m.classes.is_empty() || !m.queryset_methods.is_empty());
                if custom {
                    return Err("a custom manager may change the query".into());
                }
                steps.reverse();
                return Ok(steps);
            }
            "identifier" if hops < MAX_HOPS => {
                hops += 1;
                node = assigned_value(sem, node).ok_or(
                    "the QuerySet is not built by one assignment in this scope (SQL is shown on \
                     its chain)",
                )?;
            }
            _ => return Err("the QuerySet is built elsewhere (SQL is shown on its chain)".into()),
        }
    }
}

/// Names followed to the chain that built them (`qs = ...; qs = qs.filter(...)`), at most.
const MAX_HOPS: usize = 8;

/// The value a name holds where it is read (or assigned): its one reaching `name = value`.
fn assigned_value<'a>(sem: &Semantics<'a>, name: Node<'a>) -> Option<Node<'a>> {
    if let Some(assignment) = sem
        .parents
        .of(name)
        .filter(|p| p.kind_name() == "assignment")
    {
        if assignment
            .field(&field::LEFT)
            .is_some_and(|l| l.id() == name.id())
        {
            return assignment.field(&field::RIGHT).map(strip_parens);
        }
    }
    let scope = sem.scope_of(name);
    let reaching = scope.reaching(text(name, sem.source), name, &sem.parents);
    match reaching.bindings.as_slice() {
        [binding] if reaching.complete => match binding.kind {
            BindingKind::Assign { value, .. } => Some(strip_parens(value)),
            _ => None,
        },
        _ => None,
    }
}

/// The query Django runs to load the row a relation to one row leads to (`entry.author`,
/// `author.profile`), on the first read of it from an instance of `model`:
/// `SELECT ... FROM target WHERE target.key = %s LIMIT 21` (`get()` by the key, ordering
/// cleared), as SQLite and PostgreSQL print it (its callers pass no dialect yet). `None` when
/// `relation` is not a key or reverse one-to-one of `model`.
pub fn sql_of_related_row(
    index: &ModelIndex,
    model: ModelId,
    relation: &str,
    dialect: Dialect,
) -> Option<Result<String, String>> {
    let source = index.model(model);
    let (target, key) = match source.field(relation) {
        Some(field) if matches!(field.kind, FieldKind::ForeignKey | FieldKind::OneToOne) => {
            let target = field.target?;
            let key = match &field.to_field {
                Some(name) => match index.model(target).field(name) {
                    Some(to_field) => Ok(column(to_field)),
                    None => Err(format!("`to_field` `{name}` is not a field of the target")),
                },
                None => Table::of(index, target).map(|t| t.pk),
            };
            (target, key)
        }
        Some(_) => return None,
        None => {
            let reverse = source.reverse(relation).filter(|r| !r.many)?;
            let key = index
                .model(reverse.source)
                .field(&reverse.field)
                .map(column)
                .ok_or_else(|| format!("the key `{}` is not known", reverse.field));
            (reverse.source, key)
        }
    };
    Some(key.and_then(|key| {
        let table = Table::of(index, target)?;
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|(_, column)| table.qualified(column, dialect))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = %s{}",
            columns.join(", "),
            dialect.quote(&table.name),
            table.qualified(&key, dialect),
            limit_clause((0, Some(21)), dialect)
        );
        if sql.contains(UNQUOTABLE) {
            return Err("a name Oracle shortens (over 30 characters) is not rendered".into());
        }
        Ok(sql)
    }))
}

/// A model's table and the columns Django selects for it, in field order.
struct Table<'i> {
    id: ModelId,
    model: &'i Model,
    name: String,
    /// (field name, column), the primary key first when Django adds `id` itself.
    columns: Vec<(String, String)>,
    pk: String,
}

impl<'i> Table<'i> {
    fn of(index: &'i ModelIndex, id: ModelId) -> Result<Self, String> {
        let model = index.model(id);
        if model.has_model_bases || model.proxy {
            return Err("models inheriting from another model are not rendered yet".into());
        }
        if model.module.starts_with("django.") {
            return Err("Django's own models are not rendered yet".into());
        }
        let name = match model.db_table.as_deref() {
            Some("") => return Err("`Meta.db_table` is not a string literal".into()),
            Some(name) => name.to_string(),
            None => format!("{}_{}", model.app_label, model.name.to_lowercase()),
        };
        let mut columns = Vec::new();
        for field in &model.fields {
            match field.kind {
                // No column of their own: a join table, or the two fields a generic key reads.
                FieldKind::ManyToMany | FieldKind::GenericForeignKey => {}
                FieldKind::Unknown => {
                    return Err(format!("the field `{}` is of a kind not known", field.name))
                }
                _ if field.db_column.as_deref() == Some("") => {
                    return Err(format!(
                        "`db_column` of `{}` is not a string literal",
                        field.name
                    ))
                }
                _ => columns.push((field.name.clone(), column(field))),
            }
        }
        let pk = match model.fields.iter().find(|f| f.primary_key) {
            Some(field) => column(field),
            None => {
                columns.insert(0, ("id".to_string(), "id".to_string()));
                "id".to_string()
            }
        };
        Ok(Table {
            id,
            model,
            name,
            columns,
            pk,
        })
    }

    fn qualified(&self, column: &str, dialect: Dialect) -> String {
        format!("{}.{}", dialect.quote(&self.name), dialect.quote(column))
    }

    /// Whether `only()`/`defer()` may name `name`: a column of the table (a field, its `_id`
    /// attribute, or `pk`).
    fn check_column(&self, name: &str) -> Result<(), String> {
        if name == "pk" || (name == "id" && self.pk == "id") {
            return Ok(());
        }
        let field = self.model.field(name).or_else(|| {
            let relation = self.model.field(name.strip_suffix("_id")?)?;
            matches!(relation.kind, FieldKind::ForeignKey | FieldKind::OneToOne).then_some(relation)
        });
        match field.map(|f| f.kind) {
            Some(FieldKind::ManyToMany | FieldKind::GenericForeignKey | FieldKind::Unknown) => {
                Err(format!("`{name}` is not a column of {}", self.model.name))
            }
            Some(_) => Ok(()),
            None => Err(format!("`{name}` is not a field of {}", self.model.name)),
        }
    }
}

fn column(field: &Field) -> String {
    match (&field.db_column, field.kind) {
        (Some(column), _) => column.clone(),
        (None, FieldKind::ForeignKey | FieldKind::OneToOne) => format!("{}_id", field.name),
        (None, _) => field.name.clone(),
    }
}

/// A WHERE clause as Django's `WhereNode` holds it: conditions under AND or OR, maybe negated.
/// How nodes squash into one another decides where Django prints parentheses.
#[derive(Default)]
struct WhereNode {
    or: bool,
    negated: bool,
    children: Vec<Clause>,
}

enum Clause {
    Condition(Condition),
    Node(WhereNode),
}

struct Condition {
    sql: String,
    /// It tests an aggregate, which makes it go to HAVING.
    aggregate: bool,
    /// The column it tests, which a HAVING adds to the GROUP BY.
    column: Option<Column>,
}

impl WhereNode {
    /// Adds `clause` under this node's connector (`tree.Node.add`): a node that is not negated
    /// and has the same connector, or a single child, gives its children instead.
    fn add(&mut self, clause: WhereNode) {
        if clause.children.is_empty() {
            return;
        }
        if !clause.negated && (clause.or == self.or || clause.children.len() == 1) {
            self.children.extend(clause.children);
        } else {
            self.children.push(Clause::Node(clause));
        }
    }

    fn contains_aggregate(&self) -> bool {
        self.children.iter().any(|child| match child {
            Clause::Condition(condition) => condition.aggregate,
            Clause::Node(node) => node.contains_aggregate(),
        })
    }

    /// `WhereNode.split_having_qualify`: the parts for WHERE and those for HAVING. An OR (or a
    /// negated AND) that tests an aggregate goes to HAVING whole.
    fn split(self, negated: bool) -> (Option<WhereNode>, Option<WhereNode>) {
        if !self.contains_aggregate() {
            return (Some(self), None);
        }
        let in_negated = negated != self.negated;
        if in_negated != self.or {
            return (None, Some(self));
        }
        let (mut wheres, mut havings) = (Vec::new(), Vec::new());
        for child in self.children {
            match child {
                Clause::Node(node) => {
                    let (where_part, having_part) = node.split(in_negated);
                    wheres.extend(where_part.map(Clause::Node));
                    havings.extend(having_part.map(Clause::Node));
                }
                Clause::Condition(c) if c.aggregate => havings.push(Clause::Condition(c)),
                condition => wheres.push(condition),
            }
        }
        let part = |children: Vec<Clause>| {
            (!children.is_empty()).then_some(WhereNode {
                or: self.or,
                negated: self.negated,
                children,
            })
        };
        (part(wheres), part(havings))
    }

    /// The columns its conditions test.
    fn columns(&self) -> Vec<Column> {
        let mut columns = Vec::new();
        for child in &self.children {
            match child {
                Clause::Condition(condition) => columns.extend(condition.column.clone()),
                Clause::Node(node) => columns.extend(node.columns()),
            }
        }
        columns
    }

    /// `WhereNode.as_sql`: parentheses around several conditions, `NOT (...)` when negated.
    fn sql(&self) -> Option<String> {
        let parts: Vec<String> = self
            .children
            .iter()
            .filter_map(|child| match child {
                Clause::Condition(condition) => Some(condition.sql.clone()),
                Clause::Node(node) => node.sql(),
            })
            .collect();
        if parts.is_empty() {
            return None;
        }
        let joined = parts.join(if self.or { " OR " } else { " AND " });
        Some(if self.negated {
            format!("NOT ({joined})")
        } else if parts.len() > 1 {
            format!("({joined})")
        } else {
            joined
        })
    }
}

/// A `Q` object as written (`Q(a=1) | ~Q(b=2)`), combined the way `Q.__and__`, `__or__` and
/// `__invert__` combine them.
struct QNode<'a> {
    or: bool,
    negated: bool,
    children: Vec<QChild<'a>>,
}

enum QChild<'a> {
    /// `name__lookup=value`
    Lookup(&'a str, Node<'a>),
    Q(QNode<'a>),
}

impl<'a> QNode<'a> {
    /// `Q(*args, **kwargs)`: the positional `Q`s, then the lookups sorted by name.
    fn of_arguments(arguments: Node<'a>, source: &'a str) -> Result<Self, String> {
        let (positional, mut lookups) = split_arguments(arguments, source)?;
        if let Some((key, _)) = lookups.iter().find(|(key, _)| key.starts_with('_')) {
            return Err(format!("`{key}=` is not rendered yet"));
        }
        let mut children = positional
            .into_iter()
            .map(|argument| Ok(QChild::Q(QNode::of_expression(argument, source)?)))
            .collect::<Result<Vec<_>, String>>()?;
        lookups.sort_by_key(|(key, _)| *key);
        children.extend(lookups.into_iter().map(|(k, v)| QChild::Lookup(k, v)));
        Ok(QNode {
            or: false,
            negated: false,
            children,
        })
    }

    fn of_expression(expression: Node<'a>, source: &'a str) -> Result<Self, String> {
        let expression = strip_parens(expression);
        let declined = || "conditions other than `Q` objects are not rendered yet".to_string();
        match expression.kind_name() {
            "call" => {
                let function = expression.field(&field::FUNCTION).ok_or_else(declined)?;
                let name = text(function, source);
                if name != "Q" && !name.ends_with(".Q") {
                    return Err(declined());
                }
                let arguments = expression.field(&field::ARGUMENTS).ok_or_else(declined)?;
                QNode::of_arguments(arguments, source)
            }
            "binary_operator" => {
                let operator = expression.field(&field::OPERATOR).ok_or_else(declined)?;
                let or = match text(operator, source) {
                    "&" => false,
                    "|" => true,
                    other => {
                        return Err(format!(
                            "`Q` objects combined with `{other}` are not rendered yet"
                        ))
                    }
                };
                let (Some(left), Some(right)) = (
                    expression.field(&field::LEFT),
                    expression.field(&field::RIGHT),
                ) else {
                    return Err(declined());
                };
                let (left, right) = (
                    QNode::of_expression(left, source)?,
                    QNode::of_expression(right, source)?,
                );
                // `Q._combine`: an empty side gives the other.
                if left.children.is_empty() {
                    return Ok(right);
                }
                if right.children.is_empty() {
                    return Ok(left);
                }
                let mut combined = QNode {
                    or,
                    negated: false,
                    children: Vec::new(),
                };
                combined.add(left);
                combined.add(right);
                Ok(combined)
            }
            "unary_operator" => {
                let operator = expression.field(&field::OPERATOR).ok_or_else(declined)?;
                let operand = expression.field(&field::ARGUMENT).ok_or_else(declined)?;
                if text(operator, source) != "~" {
                    return Err(declined());
                }
                let mut negated = QNode::of_expression(operand, source)?;
                negated.negated = !negated.negated;
                Ok(negated)
            }
            _ => Err(declined()),
        }
    }

    /// `tree.Node.add` under this node's connector, as for `WhereNode`.
    fn add(&mut self, node: QNode<'a>) {
        if !node.negated && (node.or == self.or || node.children.len() == 1) {
            self.children.extend(node.children);
        } else {
            self.children.push(QChild::Q(node));
        }
    }
}

/// What the chain has built so far, kept as Django's `Query` keeps it.
struct Query<'s, 'a> {
    sem: &'s Semantics<'a>,
    table: &'s Table<'a>,
    dialect: Dialect,
    joins: Joins,
    /// The WHERE clause: what each `filter()`/`exclude()` added, ANDed.
    conditions: WhereNode,
    /// `order_by(...)` as called (`Some(empty)` clears `Meta.ordering`).
    order_by: Option<Vec<String>>,
    /// (offset, limit).
    limit: Option<(u64, Option<u64>)>,
    /// `values()`'s names and the columns they select, joined when `values()` is called.
    values: Option<Vec<(String, Column)>>,
    only: Option<Vec<String>>,
    defer: Vec<String>,
    select_related: SelectRelated,
    distinct: bool,
    /// `annotate()`'s aggregates, in the order Django adds them: they make a GROUP BY.
    annotations: Vec<Annotation>,
    /// `prefetch_related()`'s lookups, which run queries of their own after this one.
    prefetches: Vec<prefetch::Lookup<'a>>,
    /// A column `extra(select=...)` puts first (a prefetch through a many-to-many table).
    extra_select: Option<String>,
    /// The lookup of a many-to-many manager's own filter, whose joins Django's "sticky"
    /// filter lets the next `filter()` reuse.
    sticky: Option<String>,
    /// What `count()` and `exists()` select instead of rows.
    select_only: Option<String>,
}

/// What `select_related()` follows.
enum SelectRelated {
    Nothing,
    /// `select_related()`: every key that cannot be NULL, and theirs, five deep.
    Keys,
    /// `select_related("author", "mentor__author")`
    Named(Vec<String>),
}

/// How deep `select_related()` follows keys (`Query.max_depth`).
const SELECT_RELATED_DEPTH: usize = 5;

struct Annotation {
    name: String,
    /// `COUNT("library_book"."id")`
    sql: String,
    family: Family,
}

/// A column of the SELECT, ORDER BY or GROUP BY list, and what PostgreSQL's compiler needs to
/// shorten a GROUP BY: the table alias, and whether it is that table's primary key.
#[derive(Clone)]
struct Column {
    sql: String,
    alias: Alias,
    pk: bool,
}

/// An ORDER BY term: a column, or (by its position in the SELECT list) an annotation.
enum Order {
    Column(Column, bool),
    Annotation(usize, bool),
}

/// Orderings through `Meta.ordering` of related models, at most this deep (Django refuses
/// cycles; this stops them).
const MAX_ORDERING_DEPTH: usize = 4;

/// The lookups rendered on an aggregate (`annotate(n=Count(...)).filter(n__gt=2)`).
const AGGREGATE_LOOKUPS: [&str; 7] = ["exact", "in", "gt", "gte", "lt", "lte", "range"];

/// Django's lookups on a relation (`RelatedExact`, `RelatedIn`, ...).
const RELATED_LOOKUPS: [&str; 7] = ["exact", "in", "gt", "gte", "lt", "lte", "isnull"];

impl<'s, 'a> Query<'s, 'a> {
    fn new(sem: &'s Semantics<'a>, table: &'s Table<'a>, dialect: Dialect) -> Self {
        Query {
            sem,
            table,
            dialect,
            joins: Joins::new(&table.name, dialect),
            conditions: WhereNode::default(),
            order_by: None,
            limit: None,
            values: None,
            only: None,
            defer: Vec::new(),
            select_related: SelectRelated::Nothing,
            distinct: false,
            annotations: Vec::new(),
            prefetches: Vec::new(),
            extra_select: None,
            sticky: None,
            select_only: None,
        }
    }

    /// `row.books`: the rows of a to-many relation of one row, filtered as Django's related
    /// manager filters them (`core_filters`).
    fn related_manager(&mut self, owner: ModelId, name: &str) -> Result<(), String> {
        let relation = prefetch::Relation::of(self.sem, owner, name)?;
        if relation.rows != self.table.id || !relation.to_many {
            return Err(format!("`{name}` is not a related manager of this model"));
        }
        relation.check_manager(self.table)?;
        self.filter_on_rows(&relation.back, prefetch::RowsOf::One)?;
        if relation.many_to_many {
            self.sticky = Some(relation.back);
        }
        Ok(())
    }

    fn apply(&mut self, method: &str, arguments: Node<'a>) -> Result<(), String> {
        let source = self.sem.source;
        match method {
            "all" if arguments.named_child_count() == 0 => {}
            "filter" | "exclude" => {
                if let Some(back) = self.sticky.as_deref() {
                    if text(arguments, source).contains(back) {
                        return Err(format!(
                            "a filter on `{back}` after its many-to-many manager is not rendered \
                             yet"
                        ));
                    }
                }
                let mut q = QNode::of_arguments(arguments, source)?;
                q.negated = method == "exclude";
                self.add_q(&q)?;
            }
            "order_by" => self.order_by = Some(names(arguments, source)?),
            "values" | "values_list" if !self.annotations.is_empty() => {
                return Err(format!(
                    "`{method}()` after `annotate()` is not rendered yet"
                ))
            }
            "values" | "values_list" if self.values.is_some() => {
                return Err(format!("`{method}()` after `values()` is not rendered yet"))
            }
            "values" => self.values(names(arguments, source)?)?,
            "values_list" => {
                let (names, options) = names_and_options(arguments, source)?;
                if options
                    .iter()
                    .any(|(key, _)| !matches!(*key, "flat" | "named"))
                {
                    return Err("`values_list()` options other than flat/named".into());
                }
                self.values(names)?;
            }
            "only" => {
                if !self.defer.is_empty() {
                    return Err("`only()` after `defer()` is not rendered yet".into());
                }
                self.only = Some(names(arguments, source)?);
            }
            "defer" => {
                if self.only.is_some() {
                    return Err("`defer()` after `only()` is not rendered yet".into());
                }
                self.defer.extend(names(arguments, source)?);
            }
            "select_related" => {
                let names = names(arguments, source)?;
                let before = std::mem::replace(&mut self.select_related, SelectRelated::Nothing);
                self.select_related = match (names.is_empty(), before) {
                    (true, _) => SelectRelated::Keys,
                    (false, SelectRelated::Named(mut before)) => {
                        before.extend(names);
                        SelectRelated::Named(before)
                    }
                    (false, _) => SelectRelated::Named(names),
                };
            }
            "distinct" if arguments.named_child_count() == 0 => self.distinct = true,
            "annotate" => self.annotate(arguments)?,
            "prefetch_related" => prefetch::add_lookups(&mut self.prefetches, arguments, source)?,
            _ => return Err(format!("`{method}()` is not rendered yet")),
        }
        Ok(())
    }

    /// `values("title", "author__name")`: each name's column, joined now (`add_fields`), so
    /// that later filters reuse the joins.
    fn values(&mut self, names: Vec<String>) -> Result<(), String> {
        let mut values = Vec::new();
        for name in names {
            let path = joins::resolve(
                self.sem,
                self.table.id,
                &name.split("__").collect::<Vec<_>>(),
            )?;
            if !path.rest.is_empty() {
                return Err(format!("`values(\"{name}\")` is not rendered yet"));
            }
            let aliases = self.joins.setup(0, &path.hops, None);
            let (target, alias, _) = self.joins.trim(&path.hops, path.target, aliases);
            let column = Column {
                sql: self.joins.column(alias, &target.column),
                alias,
                pk: target.pk,
            };
            values.push((name, column));
        }
        self.values = Some(values);
        Ok(())
    }

    /// `Query.add_q`: one `filter()`/`exclude()` call. Joins INNER before it stay INNER.
    fn add_q(&mut self, q: &QNode<'a>) -> Result<(), String> {
        let inner = self.joins.inner();
        // The joins this call made, which its own to-many lookups share.
        let mut reusable = Vec::new();
        let (clause, _) = self.add_q_node(q, &mut reusable, false, false)?;
        self.conditions.add(clause);
        self.joins.demote(&inner);
        Ok(())
    }

    /// `Query._add_q`: the clause of a `Q` and the joins it needs a row of.
    fn add_q_node(
        &mut self,
        q: &QNode<'a>,
        reusable: &mut Vec<Alias>,
        branch_negated: bool,
        negated: bool,
    ) -> Result<(WhereNode, Vec<Alias>), String> {
        let negated = negated != q.negated;
        let branch_negated = branch_negated || q.negated;
        let mut clause = WhereNode {
            or: q.or,
            negated: q.negated,
            children: Vec::new(),
        };
        let mut promoter = JoinPromoter::new(q.or, q.children.len(), negated);
        for child in &q.children {
            let (child_clause, needed) = match child {
                QChild::Lookup(key, value) => {
                    self.build_filter(key, *value, reusable, branch_negated, negated)?
                }
                QChild::Q(node) => self.add_q_node(node, reusable, branch_negated, negated)?,
            };
            promoter.vote(&needed);
            clause.add(child_clause);
        }
        let needed = promoter.update(&mut self.joins);
        Ok((clause, needed))
    }

    /// `Query.build_filter` of one lookup: its condition (and, negated on a column that may be
    /// NULL, `IS NOT NULL` as Django adds), and the joins it needs a row of.
    fn build_filter(
        &mut self,
        key: &str,
        value: Node<'a>,
        reusable: &mut Vec<Alias>,
        branch_negated: bool,
        negated: bool,
    ) -> Result<(WhereNode, Vec<Alias>), String> {
        let source = self.sem.source;
        let names: Vec<&str> = key.split("__").collect();
        if let Some(annotation) = self.annotations.iter().find(|a| a.name == names[0]) {
            // Django tests the aggregate itself, with no joins and no NULL handling.
            let lookup = match names[1..] {
                [] => "exact",
                [lookup] if AGGREGATE_LOOKUPS.contains(&lookup) => lookup,
                _ => return Err(format!("the lookup `{key}` is not rendered yet")),
            };
            let (sql, family) = (annotation.sql.clone(), annotation.family);
            let condition = condition(&sql, lookup, value, family, source, self.dialect)?;
            let clause = WhereNode {
                or: false,
                negated: false,
                children: vec![Clause::Condition(Condition {
                    sql: condition,
                    aggregate: true,
                    column: None,
                })],
            };
            return Ok((clause, Vec::new()));
        }
        let path = joins::resolve(self.sem, self.table.id, &names)?;
        let lookup = match path.rest.as_slice() {
            [] => "exact",
            [lookup] => lookup.as_str(),
            [..] => return Err(format!("the transforms of `{key}` are not rendered yet")),
        };
        let known = if path.ends_on_relation {
            RELATED_LOOKUPS.contains(&lookup)
        } else {
            LOOKUPS.contains(&lookup)
        };
        if !known {
            return Err(format!("the lookup `{lookup}` is not rendered yet"));
        }
        if branch_negated && path.hops.iter().any(|h| h.multi_valued) {
            let lookup = lookup.to_string();
            return self.split_exclude(path, &lookup, value, reusable);
        }
        let used = self.joins.setup(0, &path.hops, Some(reusable));
        let (target, alias, kept) = self.joins.trim(&path.hops, path.target, used.clone());
        reusable.extend(kept.iter().copied());
        let column = self.joins.column(alias, &target.column);
        let condition = condition(&column, lookup, value, target.family, source, self.dialect)?;
        let tested = Column {
            sql: column.clone(),
            alias,
            pk: target.pk,
        };
        let is_null = tests_null(lookup, value, source, self.dialect);
        let mut clause = WhereNode {
            or: false,
            negated: false,
            children: vec![Clause::Condition(Condition {
                sql: condition,
                aggregate: false,
                column: Some(tested.clone()),
            })],
        };
        // Django's `require_outer`: a row may be missing where the column IS NULL, or where a
        // negated condition holds; such a condition does not vote its joins INNER.
        let require_outer = if negated { !is_null } else { is_null };
        let last = *kept.last().expect("the start alias");
        let outer = self.joins.kind(last) == Some(JoinType::LeftOuter);
        // Oracle stores `''` as NULL, so Django takes a text column as nullable (`is_nullable`);
        // a trimmed path ends on a key, which holds no text of its own.
        let trimmed = kept.len() < used.len();
        let nullable = target.nullable
            || (self.dialect == Dialect::Oracle
                && !trimmed
                && matches!(target.family, Family::Text | Family::LongText));
        if negated && !is_null && lookup != "isnull" && (nullable || outer) {
            clause.children.push(Clause::Condition(Condition {
                sql: format!("{column} IS NOT NULL"),
                aggregate: false,
                column: Some(tested),
            }));
        }
        Ok((clause, if require_outer { Vec::new() } else { used }))
    }

    /// `annotate(n=Count("books"), ...)`: positional aggregates first (named by Django's
    /// default alias, `books__count`), then the named ones as written.
    fn annotate(&mut self, arguments: Node<'a>) -> Result<(), String> {
        let source = self.sem.source;
        let (positional, named) = split_arguments(arguments, source)?;
        let positional = positional.into_iter().map(|value| (None, value));
        let named = named.into_iter().map(|(name, value)| (Some(name), value));
        for (name, value) in positional.chain(named) {
            let (function, path, distinct) = aggregate(value, source)?;
            let name = match name {
                Some(name) => name.to_string(),
                None if path == "*" => {
                    return Err("`Count(\"*\")` needs a name to be rendered".into())
                }
                None => format!("{path}__{}", function.to_lowercase()),
            };
            // Django refuses a field's name, except after `values()`, whose rows have no fields.
            let field = self.values.is_none() && self.table.model.field(&name).is_some();
            let taken = self.annotations.iter().any(|a| a.name == name) || field || name == "pk";
            if taken {
                return Err(format!("the annotation `{name}` shadows another name"));
            }
            let (column, family) = if path == "*" {
                ("*".to_string(), Family::Integer)
            } else {
                let names: Vec<&str> = path.split("__").collect();
                let path = joins::resolve(self.sem, self.table.id, &names)?;
                if !path.rest.is_empty() {
                    return Err(format!(
                        "aggregating `{}` is not rendered yet",
                        names.join("__")
                    ));
                }
                let aliases = self.joins.setup(0, &path.hops, None);
                let (target, alias, _) = self.joins.trim(&path.hops, path.target, aliases);
                (self.joins.column(alias, &target.column), target.family)
            };
            let family = match function {
                "Count" => Family::Integer,
                // An average is a float; SQLite casts aggregates of decimals.
                "Avg" => Family::Other,
                _ if matches!(family, Family::Integer | Family::Text | Family::LongText) => family,
                _ => return Err(format!("`{function}()` of this column is not rendered yet")),
            };
            let distinct = if distinct { "DISTINCT " } else { "" };
            self.annotations.push(Annotation {
                name,
                sql: format!("{}({distinct}{column})", function.to_uppercase()),
                family,
            });
        }
        Ok(())
    }

    /// `Query.split_exclude`: a negated lookup across a to-many relation tests that no related
    /// row matches, with a correlated `EXISTS` subquery. The subquery is the lookup filtered on
    /// the model's own table, its leading joins up to the to-many one dropped (`trim_start`),
    /// and its aliases renamed `U<n>` (`bump_prefix`).
    fn split_exclude(
        &mut self,
        path: joins::Path,
        lookup: &str,
        value: Node<'a>,
        reusable: &mut Vec<Alias>,
    ) -> Result<(WhereNode, Vec<Alias>), String> {
        let source = self.sem.source;
        let mut inner = Joins::new(&self.table.name, self.dialect);
        let used = inner.setup(0, &path.hops, Some(&[]));
        let (target, alias, _) = inner.trim(&path.hops, path.target.clone(), used.clone());
        let is_null = tests_null(lookup, value, source, self.dialect);
        if !is_null {
            inner.demote(&used);
        }
        let many = path
            .hops
            .iter()
            .position(|h| h.multi_valued)
            .expect("a to-many hop");
        for i in 0..many {
            if inner.kind(used[i + 1]) == Some(JoinType::LeftOuter) {
                return Err(
                    "`exclude()` through a nullable key to a to-many relation is not rendered yet"
                        .into(),
                );
            }
            inner.unref(used[i]);
        }
        let hop = &path.hops[many];
        let (selected, selected_column) = if inner.kind(used[many + 1]) == Some(JoinType::LeftOuter)
        {
            (used[many], hop.parent_column())
        } else {
            inner.unref(used[many]);
            (used[many + 1], hop.column())
        };
        // The outer row's column the subquery is correlated with, reached through the joins
        // the subquery dropped (Django resolves it as an outer reference).
        let outer_hops = &path.hops[..many];
        let outer_aliases = self.joins.setup(0, outer_hops, Some(reusable));
        let reference = joins::Target {
            column: hop.parent_column().to_string(),
            nullable: false,
            family: Family::Other,
            pk: false,
        };
        let (reference, reference_alias, kept) =
            self.joins.trim(outer_hops, reference, outer_aliases);
        if reusable
            .iter()
            .any(|&a| self.joins.name(a) == inner.name(selected))
        {
            return Err("this `exclude()` across a to-many relation is not rendered yet".into());
        }
        reusable.extend(kept);
        inner.bump('U');
        let column = inner.column(alias, &target.column);
        let condition = condition(&column, lookup, value, target.family, source, self.dialect)?;
        let exists = format!(
            "EXISTS(SELECT 1 AS {} FROM {} WHERE ({condition} AND {} = ({})){})",
            self.dialect.quote("a"),
            inner.from(),
            inner.column(selected, selected_column),
            self.joins.column(reference_alias, &reference.column),
            limit_clause((0, Some(1)), self.dialect)
        );
        let exists = match self.dialect {
            // A backend with no boolean expressions in WHERE compares the EXISTS with true.
            Dialect::Oracle => format!("CASE WHEN {exists} THEN True ELSE False END = True"),
            _ => exists,
        };
        let clause = WhereNode {
            or: false,
            negated: false,
            children: vec![Clause::Condition(Condition {
                sql: exists,
                aggregate: false,
                column: None,
            })],
        };
        Ok((clause, Vec::new()))
    }

    /// The ORDER BY terms: `order_by()`'s, else `Meta.ordering`'s (which a GROUP BY drops),
    /// each once.
    fn order_by(&mut self, grouped: bool) -> Result<Vec<Order>, String> {
        let (ordering, from_meta) = match &self.order_by {
            Some(order) => (order.iter().cloned().map(Some).collect(), false),
            None => (self.table.model.ordering.clone().unwrap_or_default(), true),
        };
        let mut terms: Vec<Order> = Vec::new();
        for name in &ordering {
            let name = name
                .as_deref()
                .ok_or("`Meta.ordering` holds an expression")?;
            let (descending, bare) = match name.strip_prefix('-') {
                Some(bare) => (true, bare),
                None => (false, name),
            };
            if let Some(i) = self.annotations.iter().position(|a| a.name == bare) {
                terms.push(Order::Annotation(i, descending));
                continue;
            }
            for (column, descending) in self.ordering(name, self.table.id, 0, false, 0)? {
                let seen = terms
                    .iter()
                    .any(|t| matches!(t, Order::Column(c, _) if c.sql == column.sql));
                if !seen {
                    terms.push(Order::Column(column, descending));
                }
            }
        }
        if grouped && from_meta {
            // Django drops a `Meta.ordering` under a GROUP BY, after making its joins.
            terms.clear();
        }
        Ok(terms)
    }

    /// `SQLCompiler.find_ordering_name`: a key orders by its model's `Meta.ordering`, joined.
    fn ordering(
        &mut self,
        name: &str,
        model: ModelId,
        alias: Alias,
        descending: bool,
        depth: usize,
    ) -> Result<Vec<(Column, bool)>, String> {
        let (descending, name) = match name.strip_prefix('-') {
            Some(name) => (!descending, name),
            None => (descending, name),
        };
        if name == "?" || name.contains('.') {
            return Err(format!("ordering by `{name}` is not rendered yet"));
        }
        let names: Vec<&str> = name.split("__").collect();
        let path = joins::resolve(self.sem, model, &names)?;
        // A reverse or many-to-many relation orders by its model's `Meta.ordering` too, which
        // is not followed here.
        if !path.rest.is_empty() || path.ends_on_many {
            return Err(format!("ordering by `{name}` is not rendered yet"));
        }
        let aliases = self.joins.setup(alias, &path.hops, None);
        let related = path.ends_on_key.map(|m| self.sem.index().model(m));
        if let Some(ordering) = related
            .and_then(|m| m.ordering.clone())
            .filter(|o| !o.is_empty())
        {
            if depth == MAX_ORDERING_DEPTH {
                return Err("orderings through more relations are not rendered".into());
            }
            let joined = *aliases.last().expect("the start alias");
            let related = path.ends_on_key.expect("a key");
            let mut terms = Vec::new();
            for item in ordering {
                let item = item.ok_or("`Meta.ordering` holds an expression")?;
                terms.extend(self.ordering(&item, related, joined, descending, depth + 1)?);
            }
            return Ok(terms);
        }
        let (target, alias, _) = self.joins.trim(&path.hops, path.target, aliases);
        let column = Column {
            sql: self.joins.column(alias, &target.column),
            alias,
            pk: target.pk,
        };
        Ok(vec![(column, descending)])
    }

    fn sql(mut self, target: Target) -> Result<String, String> {
        let table = self.table;
        let grouped = !self.annotations.is_empty();
        let mut select = Vec::new();
        // Columns named in `values()`, which a 5.2 ORDER BY refers to by position.
        let mut named = Vec::new();
        // The columns of the model's rows a GROUP BY lists.
        let mut selected: Vec<Column> = Vec::new();
        let first_annotation;
        if let Some(only) = &self.select_only {
            select.push(only.clone());
            first_annotation = select.len();
        } else if let Some(values) = &self.values {
            if values.is_empty() {
                if grouped {
                    return Err(
                        "`values()` of every column with `annotate()` is not rendered yet".into(),
                    );
                }
                select.extend(
                    table
                        .columns
                        .iter()
                        .map(|(_, c)| table.qualified(c, target.dialect)),
                );
            }
            for (name, column) in values {
                // `values()` before `annotate()` groups by the columns it names.
                selected.push(column.clone());
                select.push(match target.release {
                    Release::Before5_2 => column.sql.clone(),
                    Release::Since5_2 => {
                        format!("{} AS {}", column.sql, target.dialect.quote(name))
                    }
                });
                named.push(column.sql.clone());
            }
            first_annotation = select.len();
            select.extend(
                self.annotations
                    .iter()
                    .map(|a| format!("{} AS {}", a.sql, target.dialect.quote(&a.name))),
            );
        } else {
            let loaded = |name: &str| match &self.only {
                Some(only) => name == "id" || only.iter().any(|o| o == name),
                None => !self.defer.iter().any(|d| d == name),
            };
            for name in self.only.iter().flatten().chain(&self.defer) {
                if name.contains("__") {
                    return Err("deferring across relations is not rendered yet".into());
                }
                table.check_column(name)?;
            }
            if grouped && (self.only.is_some() || !self.defer.is_empty()) {
                return Err("`only()`/`defer()` with `annotate()` is not rendered yet".into());
            }
            for (name, column) in &table.columns {
                if column == &table.pk || loaded(name) {
                    selected.push(Column {
                        sql: table.qualified(column, target.dialect),
                        alias: 0,
                        pk: column == &table.pk && !table.model.unmanaged,
                    });
                }
            }
            select.extend(self.extra_select.clone());
            let related = !matches!(self.select_related, SelectRelated::Nothing);
            if related && (self.only.is_some() || !self.defer.is_empty()) {
                return Err(
                    "`select_related()` with `only()`/`defer()` is not rendered yet".into(),
                );
            }
            select.extend(selected.iter().map(|c| c.sql.clone()));
            first_annotation = select.len();
            select.extend(
                self.annotations
                    .iter()
                    .map(|a| format!("{} AS {}", a.sql, target.dialect.quote(&a.name))),
            );
            let related = self.select_related()?;
            select.extend(related.iter().map(|c| c.sql.clone()));
            selected.extend(related);
        }
        let order_by = self.order_by(grouped)?;
        if self.distinct {
            // DISTINCT rows are ordered by columns they select: Django adds those missing.
            for term in &order_by {
                if let Order::Column(column, _) = term {
                    if !select.contains(&column.sql) && !named.contains(&column.sql) {
                        select.push(column.sql.clone());
                    }
                }
            }
        }
        let mut sql = format!(
            "SELECT {}{} FROM {}",
            if self.distinct { "DISTINCT " } else { "" },
            select.join(", "),
            self.joins.from()
        );
        let (conditions, having) = std::mem::take(&mut self.conditions).split(false);
        if let Some(conditions) = conditions.and_then(|c| c.sql()) {
            sql.push_str(&format!(" WHERE {conditions}"));
        }
        if grouped {
            let mut group_by = selected;
            group_by.extend(order_by.iter().filter_map(|term| match term {
                Order::Column(column, _) => Some(column.clone()),
                Order::Annotation(..) => None,
            }));
            let tested = having.as_ref().map(WhereNode::columns).unwrap_or_default();
            group_by.extend(tested.iter().cloned());
            // Since 5.2 a column `values()` names is grouped by its position, except by Oracle's
            // compiler (`allows_group_by_select_index`).
            let named = match (target.release, target.dialect) {
                (Release::Since5_2, Dialect::Oracle) | (Release::Before5_2, _) => &[],
                (Release::Since5_2, _) => named.as_slice(),
            };
            let list = group_by_list(group_by, &tested, named, target.dialect);
            sql.push_str(&format!(" GROUP BY {list}"));
        }
        if let Some(having) = having.and_then(|h| h.sql()) {
            sql.push_str(&format!(" HAVING {having}"));
        }
        let meta_ordered =
            self.order_by.is_none() && table.model.ordering.as_ref().is_some_and(|o| !o.is_empty());
        if grouped && order_by.is_empty() && !meta_ordered && target.dialect == Dialect::Mysql {
            // MySQL's compiler asks a GROUP BY not to sort (`force_no_ordering`), unless the
            // ordering it dropped was `Meta.ordering`.
            sql.push_str(" ORDER BY NULL");
        }
        if !order_by.is_empty() {
            let terms: Vec<String> = order_by
                .iter()
                .map(|term| {
                    let (column, descending) = match term {
                        Order::Column(column, descending) => (column.sql.clone(), *descending),
                        // Django orders by an annotation's position in the SELECT list.
                        Order::Annotation(i, descending) => {
                            ((first_annotation + i + 1).to_string(), *descending)
                        }
                    };
                    let direction = if descending { "DESC" } else { "ASC" };
                    match named.iter().position(|n| *n == column) {
                        Some(i) if target.release == Release::Since5_2 => {
                            format!("{} {direction}", i + 1)
                        }
                        _ => format!("{column} {direction}"),
                    }
                })
                .collect();
            sql.push_str(&format!(" ORDER BY {}", terms.join(", ")));
        }
        if let Some(limit) = self.limit {
            sql.push_str(&limit_clause(limit, target.dialect));
        }
        if sql.contains(UNQUOTABLE) {
            return Err(
                "a name Oracle shortens (over 30 characters) or escapes (`%`) is not rendered"
                    .into(),
            );
        }
        Ok(sql)
    }

    /// The joins `select_related()` adds and the columns they select.
    fn select_related(&mut self) -> Result<Vec<Column>, String> {
        let requested = match &self.select_related {
            SelectRelated::Nothing => return Ok(Vec::new()),
            SelectRelated::Keys => None,
            SelectRelated::Named(names) => Some(names.clone()),
        };
        self.related_selections(self.table.id, 0, requested, 1)
    }

    /// `SQLCompiler.get_related_selections`: the keys of `model` (at `alias`) to follow, in
    /// field order, each joined and its columns selected before the keys below it. `requested`
    /// holds the names below this model, `None` for every key that cannot be NULL.
    fn related_selections(
        &mut self,
        model: ModelId,
        alias: Alias,
        requested: Option<Vec<String>>,
        depth: usize,
    ) -> Result<Vec<Column>, String> {
        let index = self.sem.index();
        let table = Table::of(index, model)?;
        let is_key = |name: &str| {
            table
                .model
                .field(name)
                .is_some_and(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne))
        };
        // A reverse one-to-one, by its query name (`profile`): joined after the keys. Django
        // orders several by the app registry, which is not followed here.
        let mut reverse: Option<(&str, ModelId)> = None;
        for name in requested.iter().flatten() {
            let first = name.split("__").next().unwrap_or(name);
            if is_key(first) {
                continue;
            }
            let reverse_one = table.model.reverse.iter().find(|r| {
                !r.many
                    && crate::analysis::loops::reverse_query_name(self.sem, r).as_deref()
                        == Some(first)
            });
            match (reverse, reverse_one) {
                (_, None) => {
                    return Err(format!("`select_related(\"{name}\")` is not rendered yet"))
                }
                (Some((other, _)), Some(_)) if other != first => {
                    return Err(
                        "`select_related()` of two reverse one-to-ones is not rendered yet".into(),
                    )
                }
                (_, Some(found)) => reverse = Some((first, found.source)),
            }
        }
        if requested.is_none() && depth > SELECT_RELATED_DEPTH {
            return Ok(Vec::new());
        }
        let mut columns = Vec::new();
        for field in &table.model.fields {
            if !matches!(field.kind, FieldKind::ForeignKey | FieldKind::OneToOne) {
                continue;
            }
            let below = match &requested {
                Some(names) => {
                    let prefix = format!("{}__", field.name);
                    if !names
                        .iter()
                        .any(|n| *n == field.name || n.starts_with(&prefix))
                    {
                        continue;
                    }
                    Some(
                        names
                            .iter()
                            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
                            .collect(),
                    )
                }
                None if field.may_be_null => continue,
                None => None,
            };
            let path = joins::resolve(self.sem, model, &[field.name.as_str()])?;
            let aliases = self.joins.setup(alias, &path.hops, None);
            let joined = *aliases.last().expect("the joined table");
            let related = field.target.ok_or("the related model is not known")?;
            let related_table = Table::of(index, related)?;
            columns.extend(related_table.columns.iter().map(|(_, c)| Column {
                sql: self.joins.column(joined, c),
                alias: joined,
                pk: *c == related_table.pk && !related_table.model.unmanaged,
            }));
            columns.extend(self.related_selections(related, joined, below, depth + 1)?);
        }
        if let Some((name, source)) = reverse {
            let prefix = format!("{name}__");
            let below: Vec<String> = requested
                .iter()
                .flatten()
                .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
                .collect();
            let path = joins::resolve(self.sem, model, &[name])?;
            let aliases = self.joins.setup(alias, &path.hops, None);
            let joined = *aliases.last().expect("the joined table");
            let related_table = Table::of(index, source)?;
            columns.extend(related_table.columns.iter().map(|(_, c)| Column {
                sql: self.joins.column(joined, c),
                alias: joined,
                pk: *c == related_table.pk && !related_table.model.unmanaged,
            }));
            columns.extend(self.related_selections(source, joined, Some(below), depth + 1)?);
        }
        Ok(columns)
    }
}

/// `Count("books", distinct=True)` as (function, path, distinct).
fn aggregate<'a>(value: Node<'a>, source: &'a str) -> Result<(&'a str, String, bool), String> {
    let declined =
        || "annotations other than Count/Sum/Max/Min/Avg of a field are not rendered yet";
    let function = value
        .field(&field::FUNCTION)
        .filter(|_| value.kind_name() == "call")
        .ok_or_else(declined)?;
    let name = text(function, source);
    let name = name.rsplit('.').next().unwrap_or(name);
    let name = ["Count", "Sum", "Max", "Min", "Avg"]
        .into_iter()
        .find(|f| *f == name)
        .ok_or_else(declined)?;
    let arguments = value.field(&field::ARGUMENTS).ok_or_else(declined)?;
    let (paths, options) = names_and_options(arguments, source)?;
    let [path] = paths.as_slice() else {
        return Err(declined().into());
    };
    let mut distinct = false;
    for (key, value) in options {
        match (key, text(value, source)) {
            ("distinct", "True") if name == "Count" => distinct = true,
            ("distinct", "False") => {}
            _ => return Err(format!("`{name}({key}=...)` is not rendered yet")),
        }
    }
    if path == "*" && name != "Count" {
        return Err(declined().into());
    }
    Ok((name, path.clone(), distinct))
}

/// The GROUP BY list: each column once; PostgreSQL's and MySQL's compilers keep of a table whose
/// primary key is listed only that key (`allows_group_by_selected_pks`) and the columns HAVING
/// tests, SQLite's and Oracle's keep every column.
fn group_by_list(
    columns: Vec<Column>,
    having: &[Column],
    named: &[String],
    dialect: Dialect,
) -> String {
    let keyed: Vec<Alias> = columns.iter().filter(|c| c.pk).map(|c| c.alias).collect();
    let mut list: Vec<String> = Vec::new();
    for column in columns {
        let kept = matches!(dialect, Dialect::Sqlite | Dialect::Oracle)
            || column.pk
            || !keyed.contains(&column.alias)
            || having.iter().any(|h| h.sql == column.sql);
        let sql = match named.iter().position(|n| *n == column.sql) {
            Some(i) => (i + 1).to_string(),
            None => column.sql,
        };
        if kept && !list.contains(&sql) {
            list.push(sql);
        }
    }
    list.join(", ")
}

/// The string arguments of `order_by("a", "-b")`, `values("a")`, ...
fn names(arguments: Node, source: &str) -> Result<Vec<String>, String> {
    let (names, options) = names_and_options(arguments, source)?;
    if !options.is_empty() {
        return Err("keyword arguments are not rendered yet".into());
    }
    Ok(names)
}

type Options<'a> = Vec<(&'a str, Node<'a>)>;

fn names_and_options<'a>(
    arguments: Node<'a>,
    source: &'a str,
) -> Result<(Vec<String>, Options<'a>), String> {
    let (positional, options) = split_arguments(arguments, source)?;
    let names = positional
        .into_iter()
        .map(|argument| {
            string_value(argument, source)
                .ok_or_else(|| "arguments other than string literals are not rendered yet".into())
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((names, options))
}

/// A call's positional arguments and its keyword arguments (name, value), comments left out.
fn split_arguments<'a>(
    arguments: Node<'a>,
    source: &'a str,
) -> Result<(Vec<Node<'a>>, Options<'a>), String> {
    let (mut positional, mut keywords) = (Vec::new(), Vec::new());
    let mut cursor = arguments.walk();
    for argument in arguments.named_children(&mut cursor) {
        match argument.kind_name() {
            "comment" => {}
            "keyword_argument" => {
                let (Some(key), Some(value)) =
                    (argument.field(&field::NAME), argument.field(&field::VALUE))
                else {
                    return Err("an argument is not readable".into());
                };
                keywords.push((text(key, source), value));
            }
            _ => positional.push(argument),
        }
    }
    Ok((positional, keywords))
}

const LOOKUPS: [&str; 15] = [
    "exact",
    "iexact",
    "in",
    "range",
    "isnull",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
];

/// What kind of values a column holds, as far as printing them goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    Text,
    /// A `TextField`: text Oracle keeps in a LOB.
    LongText,
    Integer,
    Boolean,
    Other,
}

fn family(index: &ModelIndex, field: Option<&Field>) -> Family {
    let Some(field) = field else {
        return Family::Integer; // the implicit `id`
    };
    if matches!(field.kind, FieldKind::ForeignKey | FieldKind::OneToOne) {
        // A key holds the values of the target's key (one level: keys of keys are rare).
        let Some(target) = field.target.map(|t| index.model(t)) else {
            return Family::Other;
        };
        let key = match &field.to_field {
            Some(name) => target.field(name),
            None => target.fields.iter().find(|f| f.primary_key),
        };
        return match key {
            None if field.to_field.is_none() => Family::Integer,
            Some(key) if key.kind == FieldKind::Concrete => family(index, Some(key)),
            _ => Family::Other,
        };
    }
    let class = field.class.rsplit('.').next().unwrap_or_default();
    match class {
        "CharField" | "SlugField" | "EmailField" | "URLField" => Family::Text,
        "TextField" => Family::LongText,
        "BooleanField" => Family::Boolean,
        _ if class.ends_with("IntegerField") || class.ends_with("AutoField") => Family::Integer,
        _ => Family::Other,
    }
}

/// Whether a lookup tests for NULL: `isnull=True`, `=None`, and on Oracle `=''`, which Django
/// turns into `isnull=True` there (Oracle stores `''` as NULL).
fn tests_null(lookup: &str, value: Node, source: &str, dialect: Dialect) -> bool {
    let written = text(value, source);
    (lookup == "isnull" && written == "True")
        || (matches!(lookup, "exact" | "iexact") && written == "None")
        || (dialect == Dialect::Oracle
            && lookup == "exact"
            && string_value(value, source).is_some_and(|s| s.is_empty()))
}

fn condition(
    column: &str,
    lookup: &str,
    value: Node,
    family: Family,
    source: &str,
    dialect: Dialect,
) -> Result<String, String> {
    if lookup == "exact" && tests_null(lookup, value, source, dialect) {
        return Ok(format!("{column} IS NULL"));
    }
    // Oracle compares a LOB through a substring of it, and folds case with UPPER() instead
    // (Django's `lookup_cast`).
    let substring;
    let column = if dialect == Dialect::Oracle
        && family == Family::LongText
        && !matches!(
            lookup,
            "isnull" | "iexact" | "icontains" | "istartswith" | "iendswith"
        ) {
        substring = format!("DBMS_LOB.SUBSTR({column})");
        &substring
    } else {
        column
    };
    let operator = match lookup {
        "isnull" => {
            return match text(value, source) {
                "True" => Ok(format!("{column} IS NULL")),
                "False" => Ok(format!("{column} IS NOT NULL")),
                _ => Err("`isnull` with a value not literal".into()),
            }
        }
        "in" => {
            if !matches!(value.kind_name(), "list" | "tuple" | "set") {
                return Err("`in` with a value that is not a literal list".into());
            }
            let mut cursor = value.walk();
            let mut items = Vec::new();
            let written: Vec<Node> = value.named_children(&mut cursor).collect();
            for item in &written {
                let item = literal(*item, family, source)?;
                if item == "%s" && written.len() > 1 {
                    // Django drops repeated values, which only literals tell.
                    return Err("`in` a list of values not known statically".into());
                }
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            if items.is_empty() {
                return Err("`in` an empty list runs no query".into());
            }
            if dialect == Dialect::Oracle && items.len() > ORACLE_IN_LIST_SIZE {
                return Err("`in` a list Oracle splits into several is not rendered".into());
            }
            return Ok(format!("{column} IN ({})", items.join(", ")));
        }
        "range" => {
            let bounds: Vec<Node> = match value.kind_name() {
                "list" | "tuple" => {
                    let mut cursor = value.walk();
                    value.named_children(&mut cursor).collect()
                }
                _ => Vec::new(),
            };
            let [low, high] = bounds.as_slice() else {
                return Err("`range` with a value that is not a literal pair".into());
            };
            return Ok(format!(
                "{column} BETWEEN {} AND {}",
                literal(*low, family, source)?,
                literal(*high, family, source)?
            ));
        }
        "exact" => "=",
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        "iexact" | "contains" | "icontains" | "startswith" | "istartswith" | "endswith"
        | "iendswith" => {
            if !matches!(value.kind_name(), "string") {
                // A placeholder would read as part of the pattern (`%%s%`).
                return Err("a pattern not known statically is not rendered yet".into());
            }
            let pattern = literal(value, family, source)?;
            if pattern.contains(['%', '_', '\\']) {
                return Err("a pattern with `%`, `_` or `\\` is not rendered yet".into());
            }
            let pattern = match lookup {
                "iexact" => pattern,
                "startswith" | "istartswith" => format!("{pattern}%"),
                "endswith" | "iendswith" => format!("%{pattern}"),
                _ => format!("%{pattern}%"),
            };
            // Django's operators: SQLite matches all of these with LIKE (case-insensitive for
            // ASCII); PostgreSQL casts to text, and folds case with UPPER() for the `i` ones;
            // MySQL's LIKE folds case unless BINARY; Oracle's compares in the national
            // character set, folding case with UPPER().
            return Ok(match (dialect, lookup) {
                (Dialect::Sqlite, _) => format!("{column} LIKE {pattern} ESCAPE '\\'"),
                (Dialect::Postgresql, "iexact") => {
                    format!("UPPER({column}::text) = UPPER({pattern})")
                }
                (Dialect::Postgresql, "icontains" | "istartswith" | "iendswith") => {
                    format!("UPPER({column}::text) LIKE UPPER({pattern})")
                }
                (Dialect::Postgresql, _) => format!("{column}::text LIKE {pattern}"),
                (Dialect::Mysql, "contains" | "startswith" | "endswith") => {
                    format!("{column} LIKE BINARY {pattern}")
                }
                (Dialect::Mysql, _) => format!("{column} LIKE {pattern}"),
                (Dialect::Oracle, "iexact") => format!("UPPER({column}) = UPPER({pattern})"),
                (Dialect::Oracle, "icontains" | "istartswith" | "iendswith") => format!(
                    "UPPER({column}) LIKE UPPER(TRANSLATE({pattern} USING NCHAR_CS)) \
                     ESCAPE TRANSLATE('\\' USING NCHAR_CS)"
                ),
                (Dialect::Oracle, _) => format!(
                    "{column} LIKE TRANSLATE({pattern} USING NCHAR_CS) \
                     ESCAPE TRANSLATE('\\' USING NCHAR_CS)"
                ),
            });
        }
        _ => return Err(format!("the lookup `{lookup}` is not rendered yet")),
    };
    if family == Family::Boolean && operator == "=" {
        // Django tests a boolean column itself rather than compare it with a literal, where
        // the backend takes a column as a condition: MySQL and Oracle compare it.
        let written = text(value, source);
        return match (dialect, written) {
            (Dialect::Sqlite | Dialect::Postgresql, "True") => Ok(column.to_string()),
            (Dialect::Sqlite | Dialect::Postgresql, "False") => Ok(format!("NOT {column}")),
            (Dialect::Sqlite | Dialect::Postgresql, _) => {
                Err("a BooleanField compared with a value not literal".into())
            }
            (Dialect::Mysql | Dialect::Oracle, "True" | "False") => {
                Ok(format!("{column} = {written}"))
            }
            (Dialect::Mysql | Dialect::Oracle, _) => {
                Ok(format!("{column} = {}", literal(value, family, source)?))
            }
        };
    }
    Ok(format!(
        "{column} {operator} {}",
        literal(value, family, source)?
    ))
}

/// A value as `str()` prints its parameter: numbers and text as they are; `%s` for one the
/// analyzer does not know.
fn literal(value: Node, family: Family, source: &str) -> Result<String, String> {
    let written = text(value, source);
    if value.kind_name() == "call" && builds_expression(value, source) {
        // `F("x")`, `Value(...)`, `Lower(...)`: SQL of its own, not a parameter.
        return Err(format!("the expression `{written}` is not rendered yet"));
    }
    match (value.kind_name(), family) {
        ("identifier" | "attribute" | "call" | "subscript", _) if written != "None" => {
            Ok("%s".into())
        }
        ("string", Family::Text | Family::LongText) => string_value(value, source)
            .ok_or_else(|| "an f-string or escaped string is not rendered yet".into()),
        ("integer", Family::Integer) if written.chars().all(|c| c.is_ascii_digit()) => Ok(written
            .trim_start_matches('0')
            .to_string())
        .map(|s| if s.is_empty() { "0".into() } else { s }),
        ("unary_operator", Family::Integer)
            if written.starts_with('-')
                && written[1..].trim().chars().all(|c| c.is_ascii_digit()) =>
        {
            Ok(format!("-{}", written[1..].trim()))
        }
        _ => Err(format!("the value `{written}` is not rendered yet")),
    }
}

/// Whether a call may build a query expression rather than a value: a class other than the
/// value types a lookup commonly compares with (Django's expressions are all classes).
fn builds_expression(call: Node, source: &str) -> bool {
    let Some(function) = call.field(&field::FUNCTION) else {
        return true;
    };
    let name = text(function, source);
    let name = name.rsplit('.').next().unwrap_or(name);
    name.starts_with(|c: char| c.is_ascii_uppercase()) && !matches!(name, "Decimal" | "UUID")
}

/// The clause of a slice (offset, stop), with its leading space: `LIMIT`/`OFFSET`, or Oracle's
/// `OFFSET n ROWS FETCH FIRST m ROWS ONLY`. An OFFSET alone is one no LIMIT bounds: SQLite's
/// `LIMIT -1`, MySQL's largest unsigned number.
fn limit_clause((offset, stop): (u64, Option<u64>), dialect: Dialect) -> String {
    let limit = stop.map(|stop| stop - offset);
    match (dialect, offset, limit) {
        (_, 0, None) => String::new(),
        (Dialect::Oracle, 0, Some(limit)) => format!(" FETCH FIRST {limit} ROWS ONLY"),
        (Dialect::Oracle, offset, Some(limit)) => {
            format!(" OFFSET {offset} ROWS FETCH FIRST {limit} ROWS ONLY")
        }
        (Dialect::Oracle, offset, None) => format!(" OFFSET {offset} ROWS"),
        (_, 0, Some(limit)) => format!(" LIMIT {limit}"),
        (_, offset, Some(limit)) => format!(" LIMIT {limit} OFFSET {offset}"),
        (Dialect::Sqlite, offset, None) => format!(" LIMIT -1 OFFSET {offset}"),
        (Dialect::Mysql, offset, None) => format!(" LIMIT {} OFFSET {offset}", u64::MAX),
        (Dialect::Postgresql, offset, None) => format!(" OFFSET {offset}"),
    }
}

/// `[a:b]` as (offset, limit).
fn limits(slice: Node, source: &str) -> Result<(u64, Option<u64>), String> {
    if slice.kind_name() != "slice" || text(slice, source).matches(':').count() != 1 {
        return Err("only slices `[a:b]` of literals are rendered".into());
    }
    let (start, stop) = text(slice, source)
        .split_once(':')
        .ok_or("only slices `[a:b]` of literals are rendered")?;
    let number = |s: &str| -> Result<Option<u64>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| "only slices `[a:b]` of literals are rendered".to_string())
    };
    let (start, stop) = (number(start)?.unwrap_or(0), number(stop)?);
    if stop.is_some_and(|stop| stop <= start) {
        return Err("an empty slice runs no query".into());
    }
    Ok((start, stop))
}
