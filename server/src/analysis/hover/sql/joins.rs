//! The joins of a rendered query, kept the way Django keeps them, because what `str(qs.query)`
//! prints depends on their history: a join is made once per relation and reused (a to-many one
//! only within the `filter()` call that made it), a second join of one table is aliased `T<n>`
//! after the number of joins made before it (trimmed ones too), and a join starts LEFT OUTER
//! when it may find no row and is made INNER by a condition that needs a row. This mirrors
//! `Query.setup_joins`/`trim_joins`/`join`/`promote_joins`/`demote_joins` of
//! `django.db.models.sql.query` and its `JoinPromoter`.

use crate::analysis::index::{Field, FieldKind, ModelId};
use crate::analysis::infer::Semantics;
use crate::analysis::loops::reverse_query_name;

use super::{column, family, Dialect, Family, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    LeftOuter,
}

/// One relation a lookup crosses, from the table before it to `table`.
#[derive(Clone, Debug)]
pub struct Hop {
    table: String,
    parent_column: String,
    column: String,
    /// Along a key (`book.author`), which `trim` may drop; not a reverse relation nor the join
    /// table's side of a many-to-many.
    direct: bool,
    /// The joined row may be missing: LEFT OUTER unless a condition needs it.
    nullable: bool,
    /// To-many: each `filter()` call joins it anew (only its own joins are reused).
    pub multi_valued: bool,
    /// The relation crossed (model and field), so that the same join is found again.
    relation: String,
}

impl Hop {
    /// The column joined on the side before the hop.
    pub fn parent_column(&self) -> &str {
        &self.parent_column
    }

    /// The column joined on the hop's table.
    pub fn column(&self) -> &str {
        &self.column
    }
}

/// The column a lookup or an ordering ends on.
#[derive(Clone, Debug)]
pub struct Target {
    pub column: String,
    pub nullable: bool,
    pub family: Family,
    /// The primary key of a managed model's table, to which PostgreSQL shortens a GROUP BY.
    pub pk: bool,
}

/// A lookup's names (`author__name__icontains`) resolved against the models.
pub struct Path {
    pub hops: Vec<Hop>,
    pub target: Target,
    /// The names left over: the lookup (`icontains`), or transforms.
    pub rest: Vec<String>,
    /// The path ends on a key (`author`, not `author_id`): the related model, whose
    /// `Meta.ordering` an `order_by()` of it uses.
    pub ends_on_key: Option<ModelId>,
    /// The path ends on a relation (a key or a reverse or many-to-many), whose lookups are
    /// Django's related lookups only.
    pub ends_on_relation: bool,
    /// The path ends on a reverse relation or a many-to-many.
    pub ends_on_many: bool,
}

/// Resolves `names` from `model`: the relations crossed, then the column reached.
pub fn resolve(sem: &Semantics, model: ModelId, names: &[&str]) -> Result<Path, String> {
    let index = sem.index();
    let mut current = model;
    let mut hops = Vec::new();
    let mut target: Option<Target> = None;
    let mut ends_on_key = None;
    let mut ends_on_many = false;
    let mut consumed = 0;
    for (i, name) in names.iter().enumerate() {
        let table = Table::of(index, current)?;
        let Some(member) = member(sem, &table, current, name)? else {
            if i == 0 {
                return Err(format!("`{name}` is not a field of {}", table.model.name));
            }
            break;
        };
        consumed = i + 1;
        ends_on_key = None;
        ends_on_many = matches!(member, Member::ManyToMany(_) | Member::Reverse(..));
        match member {
            Member::Column(column, field) => {
                // A column ends the path: what follows are lookups.
                return Ok(Path {
                    hops,
                    target: Target {
                        pk: column == table.pk && !table.model.unmanaged,
                        column,
                        nullable: field.is_some_and(|f| f.may_be_null),
                        family: family(index, field),
                    },
                    rest: rest(names, consumed),
                    ends_on_key: None,
                    ends_on_relation: false,
                    ends_on_many: false,
                });
            }
            Member::Key(field, by_attname) => {
                let related = field.target.ok_or("the related model is not known")?;
                let joined = Table::of(index, related)?;
                let (key_column, key) = key_of(&joined, field)?;
                hops.push(Hop {
                    table: joined.name.clone(),
                    parent_column: column(field),
                    column: key_column.clone(),
                    direct: true,
                    nullable: field.may_be_null,
                    multi_valued: false,
                    relation: format!("{}.{}", table.model.label(), field.name),
                });
                target = Some(Target {
                    pk: key_column == joined.pk && !joined.model.unmanaged,
                    column: key_column,
                    nullable: key.is_some_and(|k| k.may_be_null),
                    family: family(index, Some(field)),
                });
                ends_on_key = (!by_attname).then_some(related);
                current = related;
            }
            Member::ManyToMany(field) => {
                let related = field.target.ok_or("the related model is not known")?;
                let joined = Table::of(index, related)?;
                let through = through_table(&table, field)?;
                hops.push(Hop {
                    table: through.clone(),
                    parent_column: table.pk.clone(),
                    column: format!("{}_id", table.model.name.to_lowercase()),
                    direct: false,
                    nullable: true,
                    multi_valued: true,
                    relation: format!("{}.{}:through", table.model.label(), field.name),
                });
                hops.push(Hop {
                    table: joined.name.clone(),
                    parent_column: format!("{}_id", joined.model.name.to_lowercase()),
                    column: joined.pk.clone(),
                    direct: true,
                    nullable: false,
                    multi_valued: false,
                    relation: format!("{}.{}:target", table.model.label(), field.name),
                });
                target = Some(pk_target(sem, &joined));
                current = related;
            }
            Member::Reverse(source, field, many) => {
                let joined = Table::of(index, source)?;
                if field.kind == FieldKind::ManyToMany {
                    let through = through_table(&joined, field)?;
                    hops.push(Hop {
                        table: through,
                        parent_column: table.pk.clone(),
                        column: format!("{}_id", table.model.name.to_lowercase()),
                        direct: false,
                        nullable: true,
                        multi_valued: true,
                        relation: format!("{}.{}:target", joined.model.label(), field.name),
                    });
                    hops.push(Hop {
                        table: joined.name.clone(),
                        parent_column: format!("{}_id", joined.model.name.to_lowercase()),
                        column: joined.pk.clone(),
                        direct: true,
                        nullable: false,
                        multi_valued: false,
                        relation: format!("{}.{}:through", joined.model.label(), field.name),
                    });
                } else {
                    let (key_column, _) = key_of(&table, field)?;
                    hops.push(Hop {
                        table: joined.name.clone(),
                        parent_column: key_column,
                        column: column(field),
                        direct: false,
                        nullable: true,
                        multi_valued: many,
                        relation: format!("{}.{}:reverse", joined.model.label(), field.name),
                    });
                }
                target = Some(pk_target(sem, &joined));
                current = source;
            }
        }
    }
    Ok(Path {
        hops,
        target: target.ok_or("an empty lookup")?,
        rest: rest(names, consumed),
        ends_on_key,
        ends_on_relation: true,
        ends_on_many,
    })
}

fn rest(names: &[&str], consumed: usize) -> Vec<String> {
    names[consumed..].iter().map(|n| n.to_string()).collect()
}

/// What a name of a lookup stands for on a model.
enum Member<'i> {
    /// A column of the model's table (the field, `None` for the implicit `id`).
    Column(String, Option<&'i Field>),
    /// A key, by its name or (`true`) by its attribute `author_id`.
    Key(&'i Field, bool),
    ManyToMany(&'i Field),
    /// The reverse side of a field of another model: (that model, its field, to-many).
    Reverse(ModelId, &'i Field, bool),
}

fn member<'i>(
    sem: &Semantics<'i>,
    table: &Table<'i>,
    model: ModelId,
    name: &str,
) -> Result<Option<Member<'i>>, String> {
    if name == "pk" || (name == "id" && table.pk == "id") {
        let field = table.model.fields.iter().find(|f| f.primary_key);
        return Ok(Some(match field {
            Some(field) if matches!(field.kind, FieldKind::ForeignKey | FieldKind::OneToOne) => {
                return Err("a key as primary key is not rendered yet".into())
            }
            _ => Member::Column(table.pk.clone(), field),
        }));
    }
    if let Some(field) = table.model.field(name) {
        return Ok(Some(match field.kind {
            FieldKind::ForeignKey | FieldKind::OneToOne => Member::Key(field, false),
            FieldKind::ManyToMany => Member::ManyToMany(field),
            FieldKind::Concrete => Member::Column(column(field), Some(field)),
            FieldKind::GenericForeignKey | FieldKind::Unknown => {
                return Err(format!("lookups on `{name}` are not rendered yet"))
            }
        }));
    }
    let by_attname = name
        .strip_suffix("_id")
        .and_then(|n| table.model.field(n))
        .filter(|f| matches!(f.kind, FieldKind::ForeignKey | FieldKind::OneToOne));
    if let Some(field) = by_attname {
        return Ok(Some(Member::Key(field, true)));
    }
    let index = sem.index();
    for reverse in &index.model(model).reverse {
        if reverse_query_name(sem, reverse).as_deref() != Some(name) {
            continue;
        }
        let source = index.model(reverse.source);
        let field = source
            .field(&reverse.field)
            .ok_or("the reverse relation's field is not known")?;
        return Ok(Some(Member::Reverse(reverse.source, field, reverse.many)));
    }
    Ok(None)
}

/// The column of `table` a key to it refers to (`to_field`, else the primary key), and its
/// field.
fn key_of<'i>(table: &Table<'i>, key: &Field) -> Result<(String, Option<&'i Field>), String> {
    match &key.to_field {
        Some(to_field) => match table.model.field(to_field) {
            Some(field) if field.kind == FieldKind::Concrete => Ok((column(field), Some(field))),
            _ => Err("a key to a field not known".into()),
        },
        None => Ok((
            table.pk.clone(),
            table.model.fields.iter().find(|f| f.primary_key),
        )),
    }
}

fn pk_target(sem: &Semantics, table: &Table) -> Target {
    let field = table.model.fields.iter().find(|f| f.primary_key);
    Target {
        column: table.pk.clone(),
        nullable: false,
        family: family(sem.index(), field),
        pk: !table.model.unmanaged,
    }
}

/// The table Django creates for a many-to-many field declared on `owner`.
fn through_table(owner: &Table, field: &Field) -> Result<String, String> {
    if field.custom_through {
        return Err("a many-to-many with its own `through` model is not rendered yet".into());
    }
    if field.target == Some(owner.id) {
        return Err("a many-to-many to its own model is not rendered yet".into());
    }
    let name = match field.db_table.as_deref() {
        Some("") => {
            return Err(format!(
                "`db_table` of `{}` is not a string literal",
                field.name
            ))
        }
        Some(name) => return Ok(name.to_string()),
        None => format!("{}_{}", owner.name, field.name),
    };
    // Longer names are shortened with a hash by PostgreSQL's backend (63 characters).
    if name.len() > 63 {
        return Err("a join table name Django shortens is not rendered yet".into());
    }
    Ok(name)
}

struct Join {
    table: String,
    alias: String,
    parent: usize,
    parent_column: String,
    column: String,
    /// `None` for the base table.
    kind: Option<JoinType>,
    nullable: bool,
    /// Conditions, orderings and columns using it: a join nothing uses is not printed.
    uses: usize,
    relation: String,
}

/// The tables of a query: the model's, then each join in the order it was made.
pub struct Joins {
    dialect: Dialect,
    joins: Vec<Join>,
}

/// An alias: a position in `Joins`, 0 the base table.
pub type Alias = usize;

impl Joins {
    pub fn new(table: &str, dialect: Dialect) -> Self {
        Joins {
            dialect,
            joins: vec![Join {
                table: table.to_string(),
                alias: table.to_string(),
                parent: 0,
                parent_column: String::new(),
                column: String::new(),
                kind: None,
                nullable: false,
                uses: 1,
                relation: String::new(),
            }],
        }
    }

    /// `alias.column` as Django quotes it: a table's name quoted, a `T<n>` alias not.
    pub fn column(&self, alias: Alias, column: &str) -> String {
        let join = &self.joins[alias];
        let column = self.dialect.quote(column);
        if join.alias == join.table {
            format!("{}.{column}", self.dialect.quote(&join.alias))
        } else {
            format!("{}.{column}", join.alias)
        }
    }

    /// Whether any table is joined to the model's.
    pub fn joined(&self) -> bool {
        self.joins.len() > 1
    }

    pub fn kind(&self, alias: Alias) -> Option<JoinType> {
        self.joins[alias].kind
    }

    /// The aliases of the inner joins.
    pub fn inner(&self) -> Vec<Alias> {
        (0..self.joins.len())
            .filter(|&a| self.joins[a].kind == Some(JoinType::Inner))
            .collect()
    }

    /// Joins `hops` from `start` (`setup_joins`): each an existing equal join if there is one
    /// (a to-many one only among `reusable`, when given), else a new one. The aliases, `start`
    /// first.
    pub fn setup(&mut self, start: Alias, hops: &[Hop], reusable: Option<&[Alias]>) -> Vec<Alias> {
        let mut aliases = vec![start];
        let mut parent = start;
        for hop in hops {
            let reuse = if hop.multi_valued { reusable } else { None };
            parent = self.join(parent, hop, reuse);
            aliases.push(parent);
        }
        aliases
    }

    fn join(&mut self, parent: Alias, hop: &Hop, reuse: Option<&[Alias]>) -> Alias {
        let equal = (1..self.joins.len()).rev().find(|&a| {
            let join = &self.joins[a];
            reuse.is_none_or(|r| r.contains(&a))
                && join.table == hop.table
                && join.parent == parent
                && join.relation == hop.relation
        });
        if let Some(alias) = equal {
            self.joins[alias].uses += 1;
            return alias;
        }
        let alias = if self.joins.iter().any(|j| j.table == hop.table) {
            format!("T{}", self.joins.len() + 1)
        } else {
            hop.table.clone()
        };
        let kind = if self.joins[parent].kind == Some(JoinType::LeftOuter) || hop.nullable {
            JoinType::LeftOuter
        } else {
            JoinType::Inner
        };
        self.joins.push(Join {
            table: hop.table.clone(),
            alias,
            parent,
            parent_column: hop.parent_column.clone(),
            column: hop.column.clone(),
            kind: Some(kind),
            nullable: hop.nullable,
            uses: 1,
            relation: hop.relation.clone(),
        });
        self.joins.len() - 1
    }

    /// Drops the last joins a condition does not need (`trim_joins`): a key's column holds the
    /// value of the related row's key, so `author__id` reads `book.author_id`. The target, its
    /// alias and the joins kept.
    pub fn trim(
        &mut self,
        hops: &[Hop],
        mut target: Target,
        mut aliases: Vec<Alias>,
    ) -> (Target, Alias, Vec<Alias>) {
        for hop in hops.iter().rev() {
            if aliases.len() == 1 || !hop.direct || target.column != hop.column {
                break;
            }
            target.column = hop.parent_column.clone();
            target.nullable = hop.nullable;
            target.pk = false;
            let alias = aliases.pop().expect("more than one alias");
            self.joins[alias].uses -= 1;
        }
        let alias = *aliases.last().expect("the start alias");
        (target, alias, aliases)
    }

    /// Makes LEFT OUTER the joins (and those below them) that may find no row.
    pub fn promote(&mut self, aliases: &[Alias]) {
        let mut pending: Vec<Alias> = aliases.to_vec();
        let mut i = 0;
        while i < pending.len() {
            let alias = pending[i];
            i += 1;
            let join = &self.joins[alias];
            if join.kind.is_none() {
                continue;
            }
            let parent_outer = self.joins[join.parent].kind == Some(JoinType::LeftOuter);
            if (join.nullable || parent_outer) && join.kind != Some(JoinType::LeftOuter) {
                self.joins[alias].kind = Some(JoinType::LeftOuter);
                for child in 1..self.joins.len() {
                    if self.joins[child].parent == alias && !pending.contains(&child) {
                        pending.push(child);
                    }
                }
            }
        }
    }

    /// Makes INNER the joins (and those above them) a condition needs a row of.
    pub fn demote(&mut self, aliases: &[Alias]) {
        let mut pending: Vec<Alias> = aliases.to_vec();
        while let Some(alias) = (!pending.is_empty()).then(|| pending.remove(0)) {
            if self.joins[alias].kind == Some(JoinType::LeftOuter) {
                self.joins[alias].kind = Some(JoinType::Inner);
                let parent = self.joins[alias].parent;
                if self.joins[parent].kind == Some(JoinType::Inner) {
                    pending.push(parent);
                }
            }
        }
    }

    pub fn name(&self, alias: Alias) -> &str {
        &self.joins[alias].alias
    }

    pub fn unref(&mut self, alias: Alias) {
        self.joins[alias].uses -= 1;
    }

    /// Renames every alias `<prefix><position>`, as Django does to a subquery's.
    pub fn bump(&mut self, prefix: char) {
        for (position, join) in self.joins.iter_mut().enumerate() {
            join.alias = format!("{prefix}{position}");
        }
    }

    /// What follows `FROM`: the first table in use, then ` INNER JOIN "t" ON (...)` for each
    /// other join in use, in the order they were made.
    pub fn from(&self) -> String {
        let mut sql = String::new();
        let mut used = (0..self.joins.len()).filter(|&a| self.joins[a].uses > 0);
        let Some(first) = used.next() else {
            return sql;
        };
        let first = &self.joins[first];
        sql.push_str(&self.dialect.quote(&first.table));
        if first.alias != first.table {
            sql.push_str(&format!(" {}", first.alias));
        }
        for alias in used {
            let join = &self.joins[alias];
            let kind = match join.kind {
                Some(JoinType::LeftOuter) => "LEFT OUTER JOIN",
                _ => "INNER JOIN",
            };
            let aliased = if join.alias == join.table {
                String::new()
            } else {
                format!(" {}", join.alias)
            };
            sql.push_str(&format!(
                " {kind} {}{aliased} ON ({} = {})",
                self.dialect.quote(&join.table),
                self.column(join.parent, &join.parent_column),
                self.column(alias, &join.column)
            ));
        }
        sql
    }
}

/// How the joins a condition used vote, per `django.db.models.sql.query.JoinPromoter`: under
/// AND a join every row needs is INNER; under OR one that some branch does not need is LEFT
/// OUTER. Negation swaps AND and OR.
pub struct JoinPromoter {
    or: bool,
    children: usize,
    votes: Vec<(Alias, usize)>,
}

impl JoinPromoter {
    pub fn new(or: bool, children: usize, negated: bool) -> Self {
        JoinPromoter {
            or: or != negated,
            children,
            votes: Vec::new(),
        }
    }

    pub fn vote(&mut self, aliases: &[Alias]) {
        let mut seen = Vec::new();
        for &alias in aliases {
            if seen.contains(&alias) {
                continue;
            }
            seen.push(alias);
            match self.votes.iter_mut().find(|(a, _)| *a == alias) {
                Some((_, votes)) => *votes += 1,
                None => self.votes.push((alias, 1)),
            }
        }
    }

    /// Applies the votes; the joins made INNER (which the enclosing condition votes with).
    pub fn update(self, joins: &mut Joins) -> Vec<Alias> {
        let mut promote = Vec::new();
        let mut demote = Vec::new();
        for (alias, votes) in self.votes {
            if self.or && votes < self.children {
                promote.push(alias);
            }
            if !self.or || votes == self.children {
                demote.push(alias);
            }
        }
        joins.promote(&promote);
        joins.demote(&demote);
        demote
    }
}
