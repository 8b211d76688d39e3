; sum(row.f for row in rows), sum([...]), max(...), min(...)
(call
  function: (identifier) @function (#any-of? @function "sum" "max" "min")
  arguments: (generator_expression) @argument) @call
(call
  function: (identifier) @function (#any-of? @function "sum" "max" "min")
  arguments: (argument_list . (_) @argument .)) @call
