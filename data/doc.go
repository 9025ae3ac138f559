// Package data reads what a model is trained and evaluated on, without
// libtorch: the model's modality inputs and prompt (config.json's "mose"
// section), JSONL manifests and the feature files they name, tokenization
// and prompt encoding, batches as plain Go slices, the seeded resumable
// sampler, the prefetching loader, and the label synonyms. Every bad input
// is an error naming the sample and the file.
package data
