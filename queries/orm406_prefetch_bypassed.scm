; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; row.relation.get(...)
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "get"))
  arguments: (argument_list)) @call
