; qs.exclude(...) / qs.filter(...): the rule looks for to-many lookups in the arguments
(call
  function: (attribute object: (_) @receiver attribute: (identifier) @method
    (#any-of? @method "exclude" "filter"))
  arguments: (argument_list) @arguments) @call
