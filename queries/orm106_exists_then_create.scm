; <manager>.create(...): the rule keeps creates guarded by an existence check or a failed get()
(call
  function: (attribute
    object: (_) @manager
    attribute: (identifier) @method (#eq? @method "create"))) @call
