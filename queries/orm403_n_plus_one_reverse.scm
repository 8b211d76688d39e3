; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; <name>.<relation>.all()
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "all"))
  arguments: (argument_list)) @call
