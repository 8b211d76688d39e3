; row.relation.get(...)
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "get"))
  arguments: (argument_list)) @call
