// Package infer runs a trained stack without training it: score-mode
// evaluation (every label ranked by its answer log-likelihood, through the
// KV cache), generation (greedy or sampled, through the KV cache) with the
// answer mapped to a label, Attention Reallocation when the recipe enables
// it, `mose eval` (Evaluate) and `mose predict` (Predict).
package infer
