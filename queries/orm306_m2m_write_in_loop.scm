; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; <owner>.<relation>.add(y) / .remove(y): the rule keeps writes on a relation manager in a for loop
(call
  function: (attribute
    object: (attribute
      object: (_) @owner
      attribute: (identifier) @relation) @manager
    attribute: (identifier) @method (#match? @method "^(add|remove)$"))
  arguments: (argument_list . (_) @argument .)) @call
