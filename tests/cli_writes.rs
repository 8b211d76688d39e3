//! The write rules' fixes through the real binary: `check --output-format json` on a project,
//! each fix's edits applied as a client would (1-based lines, columns in characters) must give
//! the rewritten code, and CRLF files keep CRLF.

mod common;

use std::path::Path;
use std::process::Command;

use common::temp;
use serde_json::Value;

const MODELS: &str = r#"from django.contrib.auth.models import Group, Permission
from django.db import models


class Entry(models.Model):
    title = models.CharField(max_length=100)
    slug = models.SlugField()
    status = models.CharField(max_length=10)
    views = models.IntegerField(default=0)
    stale = models.BooleanField(default=False)


class Order(models.Model):
    total = models.IntegerField()

    def save(self, *args, **kwargs):
        self.audit()
        super().save(*args, **kwargs)
"#;

fn findings(project: &Path, file: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_django-orm-lsp"))
        .args(["check", "--output-format", "json", file])
        .current_dir(project)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

/// Byte offset of a 1-based line and character column; lines end at `\r\n`, `\n` or `\r`.
fn offset(text: &str, line: u64, column: u64) -> usize {
    let mut start = 0;
    for _ in 1..line {
        let rest = &text[start..];
        let end = rest.find(['\n', '\r']).expect("line exists");
        start += end
            + if rest[end..].starts_with("\r\n") {
                2
            } else {
                1
            };
    }
    text[start..]
        .char_indices()
        .nth(column as usize - 1)
        .map_or(text.len(), |(i, _)| start + i)
}

/// The file after applying the fix of the one finding with `code`, with its applicability.
fn fixed(project: &Path, file: &str, code: &str) -> (String, String) {
    let text = std::fs::read_to_string(project.join(file)).unwrap();
    let all = findings(project, file);
    let found: Vec<&Value> = all.iter().filter(|f| f["code"] == code).collect();
    assert_eq!(found.len(), 1, "{code} in {file}: {all:#?}");
    let fix = &found[0]["fix"];
    let mut edits: Vec<(usize, usize, &str)> = fix["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let at =
                |l: &str, c: &str| offset(&text, e[l].as_u64().unwrap(), e[c].as_u64().unwrap());
            (
                at("line", "column"),
                at("end_line", "end_column"),
                e["content"].as_str().unwrap(),
            )
        })
        .collect();
    edits.sort();
    let mut out = text.clone();
    for (start, end, content) in edits.into_iter().rev() {
        out.replace_range(start..end, content);
    }
    (out, fix["applicability"].as_str().unwrap().to_string())
}

#[test]
fn each_write_rule_rewrites_through_the_binary() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "ORM305",
            "safe",
            "app/purge.py",
            "from app.models import Entry\n\n\ndef purge():\n    for entry in Entry.objects.filter(stale=True):\n        entry.delete()\n    return 0\n",
            "from app.models import Entry\n\n\ndef purge():\n    Entry.objects.filter(stale=True).delete()\n    return 0\n",
        ),
        (
            "ORM302",
            "safe",
            "app/publish.py",
            "from app.models import Entry\n\n\ndef publish():\n    for entry in Entry.objects.filter(status=\"draft\"):\n        # Drafts go live at midnight.\n        entry.status = \"live\"\n        entry.save()\n",
            "from app.models import Entry\n\n\ndef publish():\n    # Drafts go live at midnight.\n    Entry.objects.filter(status=\"draft\").update(status=\"live\")\n",
        ),
        (
            "ORM303",
            "unsafe",
            "app/double.py",
            "from app.models import Order\n\n\ndef double():\n    for order in Order.objects.all():\n        order.total = order.total * 2\n        order.save()\n",
            "from app.models import Order\nfrom django.db.models import F\n\n\ndef double():\n    Order.objects.all().update(total=F(\"total\") * 2)\n",
        ),
        (
            "ORM304",
            "safe",
            "app/slugs.py",
            "from app.models import Entry\nfrom django.utils.text import slugify\n\n\ndef slugs():\n    for entry in Entry.objects.filter(slug=\"\"):\n        entry.slug = slugify(entry.title)\n        entry.save(update_fields=[\"slug\"])\n",
            "from app.models import Entry\nfrom django.utils.text import slugify\n\n\ndef slugs():\n    to_update = []\n    for entry in Entry.objects.filter(slug=\"\"):\n        entry.slug = slugify(entry.title)\n        to_update.append(entry)\n    Entry.objects.bulk_update(to_update, [\"slug\"], batch_size=500)\n",
        ),
        (
            "ORM301",
            "safe",
            "app/seed.py",
            "from app.models import Entry\n\n\ndef seed(titles):\n    for title in titles:\n        Entry.objects.create(title=title, views=1)\n",
            "from app.models import Entry\n\n\ndef seed(titles):\n    Entry.objects.bulk_create([Entry(title=title, views=1) for title in titles], batch_size=500)\n",
        ),
        (
            "ORM306",
            "safe",
            "app/perms.py",
            "from app.models import Group, Permission\n\n\ndef grant(perm: Permission):\n    for group in Group.objects.filter(name__startswith=\"staff\"):\n        group.permissions.add(perm)\n",
            "from app.models import Group, Permission\n\n\ndef grant(perm: Permission):\n    perm.group_set.add(*Group.objects.filter(name__startswith=\"staff\"))\n",
        ),
        (
            "ORM106",
            "unsafe",
            "app/tags.py",
            "from app.models import Entry\n\n\ndef entry_for(title):\n    try:\n        entry = Entry.objects.get(title=title)\n    except Entry.DoesNotExist:\n        entry = Entry.objects.create(title=title)\n    return entry\n",
            "from app.models import Entry\n\n\ndef entry_for(title):\n    entry, _ = Entry.objects.get_or_create(title=title)\n    return entry\n",
        ),
    ];
    let mut files: Vec<(&str, &[u8])> = vec![("app/models.py", MODELS.as_bytes())];
    files.extend(
        cases
            .iter()
            .map(|(_, _, path, source, _)| (*path, source.as_bytes())),
    );
    let project = temp::project(&files);
    for (code, applicability, path, _, expected) in cases {
        let (text, applied) = fixed(project.path(), path, code);
        assert_eq!(&text, expected, "{code}");
        assert_eq!(&applied, applicability, "{code}");
    }
}

#[test]
fn a_crlf_file_keeps_crlf_through_a_rewrite() {
    let source = "from app.models import Entry\r\n\r\n\r\ndef bump():\r\n    for entry in Entry.objects.all():\r\n        # One more view each.\r\n        entry.views += 1\r\n        entry.save()\r\n";
    let project = temp::project(&[
        ("app/models.py", MODELS.as_bytes()),
        ("app/bump.py", source.as_bytes()),
    ]);
    let (text, _) = fixed(project.path(), "app/bump.py", "ORM303");
    assert_eq!(
        text,
        "from app.models import Entry\r\nfrom django.db.models import F\r\n\r\n\r\ndef bump():\r\n    # One more view each.\r\n    Entry.objects.all().update(views=F(\"views\") + 1)\r\n"
    );
}

#[test]
fn the_configured_batch_size_goes_into_the_bulk_calls() {
    let source = "from app.models import Entry\n\n\ndef seed(titles):\n    for title in titles:\n        Entry.objects.create(title=title)\n";
    let project = temp::project(&[
        (
            "pyproject.toml",
            b"[tool.django-orm-lsp]\nbulk-batch-size = 100\n",
        ),
        ("app/models.py", MODELS.as_bytes()),
        ("app/seed.py", source.as_bytes()),
    ]);
    let (text, _) = fixed(project.path(), "app/seed.py", "ORM301");
    assert!(
        text.contains(
            "Entry.objects.bulk_create([Entry(title=title) for title in titles], batch_size=100)\n"
        ),
        "{text}"
    );
}
