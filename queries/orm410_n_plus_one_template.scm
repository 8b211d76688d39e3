; a class-based view (it may name a `template_name`)
(class_definition) @view

; `render(request, "app/x.html", {...})`, `TemplateResponse(...)`, `render_to_string(...)`,
; `self.render_to_response(context)`
(call
  function: [(identifier) (attribute)] @function
  (#match? @function "(render|render_to_string|render_to_response|TemplateResponse)$")) @call
