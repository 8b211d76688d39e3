; within: loops
; (runs only inside `for` statements and comprehensions: the rule is silent outside them)
; <row>.save(...): the rule keeps calls on the variable of a loop over a QuerySet
(call
  function: (attribute
    object: (identifier) @instance
    attribute: (identifier) @method (#eq? @method "save"))) @call
