; a in b, a not in b (the rule checks the operator and skips chained comparisons)
(comparison_operator) @comparison
