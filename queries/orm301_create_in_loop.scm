; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; <manager>.create(...): the rule keeps a model manager's create() inside a for loop
(call
  function: (attribute
    attribute: (identifier) @method (#eq? @method "create"))) @call

; Model(...).save(): an instance built and saved at once
(call
  function: (attribute
    object: (call) @instance
    attribute: (identifier) @method (#eq? @method "save"))) @call
