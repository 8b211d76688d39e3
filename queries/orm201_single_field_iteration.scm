; [row.field for row in rows] / {row.field for row in rows}
(list_comprehension
  body: (_) @element
  (for_in_clause left: (identifier) @target right: (_) @iterable)) @comprehension
(set_comprehension
  body: (_) @element
  (for_in_clause left: (identifier) @target right: (_) @iterable)) @comprehension
; for row in rows: names.append(row.field)
(for_statement
  left: (identifier) @target
  right: (_) @iterable
  body: (block
    (expression_statement
      (call
        function: (attribute object: (identifier) @collection attribute: (identifier) @method)
        arguments: (argument_list . (_) @element .))))) @loop
