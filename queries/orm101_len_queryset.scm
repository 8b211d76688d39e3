; len(<expr>) with one positional argument
(call
  function: (identifier) @function (#eq? @function "len")
  arguments: (argument_list . (_) @receiver .)) @call
