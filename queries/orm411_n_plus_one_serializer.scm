; a view class (it may name a `serializer_class`)
(class_definition) @view

; `XSerializer(rows, many=True)`
(call
  function: [(identifier) (attribute)] @serializer
  arguments: (argument_list
    (keyword_argument
      name: (identifier) @_many
      value: (true)))
  (#eq? @_many "many")) @call
