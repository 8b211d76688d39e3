; <name>.<attribute>: the rule keeps reads of a forward relation of a loop variable
(attribute object: (identifier) @instance attribute: (identifier) @relation) @access
