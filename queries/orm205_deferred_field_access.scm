; <row>.<field>: the rule keeps reads of a column the row's QuerySet defers
(attribute object: (identifier) @instance attribute: (identifier) @field) @access
