; <expr>.count() with no arguments; the rule reads the comparison or truth test around it.
(call
  function: (attribute object: (_) @receiver attribute: (identifier) @method (#eq? @method "count"))
  arguments: (argument_list)) @count
