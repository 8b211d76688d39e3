; within: loops
; (runs only inside `for` statements and comprehensions: the rule reads loop variables)
; <row>.<field>: the rule keeps reads of a column the row's QuerySet defers
(attribute object: (identifier) @instance attribute: (identifier) @field) @access
