; within: loops
; (runs only inside `for` statements and comprehensions: the rule reads loop variables)
; <name>.<attribute>: the rule keeps reads of a forward relation of a loop variable
(attribute object: (identifier) @instance attribute: (identifier) @relation) @access
