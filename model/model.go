// Package model is mose's frozen multimodal LLM: a LLaMA-family decoder loaded
// from a HF-layout directory, modality projectors that turn feature vectors
// into tokens, and the assembly that splices those tokens into the prompt.
// Trainable parts plug in through the Adapter interface of each Linear.
package model

import (
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
)

// Model is a loaded decoder with its projectors. All tensors live on one
// device; frozen weights are in the run dtype. Use it on the tensor thread
// (torch.Run) only, and Close it to free the weights.
type Model struct {
	Config Config
	DType  torch.DType // run dtype of the frozen weights
	Device torch.Device
	// Quantize is how the decoder linears are stored (quant.None: in DType).
	Quantize quant.Kind

	EmbedTokens *torch.Tensor // (V,D)
	Layers      []Layer
	Norm        *torch.Tensor // (D)
	Head        *torch.Tensor // (V,D); the same tensor as EmbedTokens when tied
	Projectors  []Projector   // in Config.Projectors order

	// AR, when set, reallocates attention in inference forwards (Forward
	// with train false and modality ids given). nil: fused SDPA everywhere.
	AR *AR

	weights *torch.Scope // owns every tensor above
	rope    rope
}

// Close frees the model's tensors.
func (m *Model) Close() {
	m.rope.free()
	m.weights.Close()
	if m.Quantize != quant.None {
		torch.ReleaseQuantScratch() // the dequantization buffers its linears grew
	}
}

// Linears returns every projection of every layer, in layer order, for
// adapter injection (names are HF module names).
func (m *Model) Linears() []*Linear {
	var ls []*Linear
	for i := range m.Layers {
		ls = append(ls, m.Layers[i].Linears()...)
	}
	return ls
}

// Features are one modality input's features for a batch.
type Features struct {
	Data      *torch.Tensor // (B,N,F) float32
	Positions *torch.Tensor // (B·N) int64: flattened (B·T) positions the N tokens of each row replace
}

// Inputs are one batch: token ids with feature slots, and the features.
type Inputs struct {
	IDs      *torch.Tensor // (B,T) int64; values at feature slots are ignored
	Modality *torch.Tensor // (B,T) int64 modality ids (modality.Text, ...)
	Features []Features    // one per projector, in Config.Projectors order
}
