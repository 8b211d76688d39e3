//! Generated Django code for benchmarks and large-input tests.
#![allow(dead_code)]

/// A views module of about `lines` lines: one function in `finding_every` holds an ORM101
/// finding (`len()` of a queryset); the others use the right forms.
pub fn django_views(lines: usize, finding_every: usize) -> String {
    let mut out = String::from("from django.db.models import F, QuerySet\nfrom django.shortcuts import render\n\nfrom blog.models import Blog, Entry\n");
    let mut i = 0;
    while out.lines().count() < lines {
        let count = if i % finding_every == 0 {
            format!("len(Entry.objects.filter(rating={}))", i % 5)
        } else {
            format!("Entry.objects.filter(rating={}).count()", i % 5)
        };
        out.push_str(&format!(
            "\n\ndef view_{i}(request, blog_id):\n    entries = Entry.objects.filter(blog_id=blog_id).order_by(\"-id\")\n    if {count} > 3:\n        return None\n    titles = []\n    for entry in entries:\n        titles.append(entry.title.upper())\n    total = sum(len(t) for t in titles)\n    return render(request, \"blog/list.html\", {{\"titles\": titles, \"total\": total, \"n\": {i}}})\n"
        ));
        i += 1;
    }
    out
}
