; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; row.relation.count()
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "count"))
  arguments: (argument_list)) @call
; len(row.relation.all())
(call
  function: (identifier) @function (#eq? @function "len")
  arguments: (argument_list .
    (call
      function: (attribute
        object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
        attribute: (identifier) @method (#eq? @method "all"))
      arguments: (argument_list)) .)) @call
