; for row in Model.objects.all(): ...
(for_statement
  left: (identifier) @target
  right: (call
    function: (attribute attribute: (identifier) @method (#eq? @method "all"))
    arguments: (argument_list)) @iterable
  body: (block) @body) @loop
