; <name>.<relation>.all()
(call
  function: (attribute
    object: (attribute object: (identifier) @instance attribute: (identifier) @relation)
    attribute: (identifier) @method (#eq? @method "all"))
  arguments: (argument_list)) @call
