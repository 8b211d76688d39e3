; row.relation.filter(...)
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "filter"))
  arguments: (argument_list) @arguments) @call
