; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; <receiver>.<query method>(...) — a query that runs where it is written
(call
  function: (attribute object: (_) @receiver attribute: (identifier) @method
    (#any-of? @method "get" "first" "last" "exists" "count" "aggregate" "earliest" "latest" "in_bulk"))
  arguments: (argument_list)) @call
