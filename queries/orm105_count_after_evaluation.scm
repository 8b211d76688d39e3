; <expr>.count() / <expr>.exists() with no arguments
(call
  function: (attribute object: (_) @receiver attribute: (identifier) @method (#match? @method "^(count|exists)$"))
  arguments: (argument_list)) @call
