; <instance>.<relation>.id / .pk
(attribute
  object: (attribute object: (_) @instance attribute: (identifier) @relation)
  attribute: (identifier) @key (#match? @key "^(id|pk)$")) @access
