; a class that may be a `ModelAdmin` (its `list_display` is read)
(class_definition) @admin
