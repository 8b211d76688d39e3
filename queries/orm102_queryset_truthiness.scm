; Expressions tested for truth; the rule looks through `and`/`or` and parentheses.
(if_statement condition: (_) @condition)
(elif_clause condition: (_) @condition)
(while_statement condition: (_) @condition)
(not_operator argument: (_) @condition)
(if_clause (_) @condition)
(assert_statement . (_) @condition)
(conditional_expression . (_) . (_) @condition)
(call
  function: (identifier) @function (#eq? @function "bool")
  arguments: (argument_list . (_) @condition .))
