// Package modality defines the token modality ids: one per sequence
// position, carried from the batches (data) to the experts' routing and to
// Attention Reallocation (model). This is their one definition.
package modality

// Token modality ids. The experts' one-hot columns and the export sidecar's
// "modality_ids" use this numbering.
const (
	Text   = 0
	Visual = 1
	Audio  = 2
	Pad    = 3
	// Count is the number of ids (the width of the one-hot).
	Count = 4
)

// Names of the modalities of a model's inputs (the "modality" field of an
// input in config.json's "mose" section).
const (
	VisualName = "visual"
	AudioName  = "audio"
)

// IDs maps each modality's name to its id, as export sidecars record it.
func IDs() map[string]int {
	return map[string]int{"text": Text, "visual": Visual, "audio": Audio, "pad": Pad}
}
