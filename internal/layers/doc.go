// Package layers holds the test that keeps mose's dependency direction:
// cmd -> {trainer, export} -> infer -> memest -> stack -> checkpoint ->
// {model, experts, gating} -> {recipes, data, ...} -> internal leaves.
// It has no code of its own.
package layers
