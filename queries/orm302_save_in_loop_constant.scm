; <row>.save(...): the rule keeps calls on the variable of a loop over a QuerySet
(call
  function: (attribute
    object: (identifier) @instance
    attribute: (identifier) @method (#eq? @method "save"))) @call
