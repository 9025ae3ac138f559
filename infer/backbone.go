package infer

import (
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// backbone is what scoring and decoding need of the frozen model besides
// its decoder's cache and head (c.Model's, for a LLaMA-family model and a
// Qwen2.5-Omni thinker alike): a prompt batch run into a KV cache, text
// tokens after it, and (the reference path) a whole batch run without a
// cache. One is made per batch (backboneOf): the thinker's keeps its
// prompt's rope deltas.
type backbone interface {
	// forward runs a whole batch (score or train mode) without a cache:
	// its tensors (answer positions and targets) and its final hidden
	// states. b (B,T) -> (B,T,D)
	forward(s *torch.Scope, b *data.Batch) (stack.BatchTensors, *torch.Tensor)
	// prompt runs a prompt-mode batch (right-padded rows) into an empty
	// cache. b (B,T) -> (B,T,D)
	prompt(s *torch.Scope, cache *model.Cache, b *data.Batch) *torch.Tensor
	// text extends the cache by text tokens after the prompt, as the
	// decoder's Extend takes them. st.In (B,T) -> (B,T,D)
	text(s *torch.Scope, cache *model.Cache, st *model.Step) *torch.Tensor
}

// backboneOf is c's backbone for one batch (a variable: tests break it to
// show that their checks can fail).
var backboneOf = func(c *stack.Stack) backbone {
	if c.Omni != nil {
		return &thinkerBackbone{c: c}
	}
	return decoderBackbone{c: c}
}

// decoderBackbone is a LLaMA-family decoder: the batch's features go in
// with its ids, and positions are token order.
type decoderBackbone struct{ c *stack.Stack }

func (d decoderBackbone) forward(s *torch.Scope, b *data.Batch) (stack.BatchTensors, *torch.Tensor) {
	bt := stack.Tensors(s, b, d.c.Dev)
	return bt, d.c.Model.Forward(s, bt.In, false)
}

func (d decoderBackbone) prompt(s *torch.Scope, cache *model.Cache, b *data.Batch) *torch.Tensor {
	in, valid := promptInputs(s, b, d.c.Dev)
	return d.c.Model.Extend(s, cache, &model.Step{In: in, Valid: valid})
}

func (d decoderBackbone) text(s *torch.Scope, cache *model.Cache, st *model.Step) *torch.Tensor {
	return d.c.Model.Extend(s, cache, st)
}

// thinkerBackbone is a Qwen2.5-Omni thinker: the towers run on the
// batch's media under no-grad (stack.OmniEncode), the prompt takes TMRoPE's
// positions (Thinker.Prefill), and text after it the rotary positions
// shifted by each row's rope delta (Thinker.Continue).
type thinkerBackbone struct {
	c     *stack.Stack
	delta []int64 // per row, from prompt
}

func (th *thinkerBackbone) forward(s *torch.Scope, b *data.Batch) (stack.BatchTensors, *torch.Tensor) {
	bt, p, x := th.c.OmniBegin(s, b, false)
	if p == nil {
		return bt, nil
	}
	return bt, p.Run(s, x)
}

func (th *thinkerBackbone) prompt(s *torch.Scope, cache *model.Cache, b *data.Batch) *torch.Tensor {
	in, emb := th.c.OmniEncode(s, b)
	if in == nil {
		return nil
	}
	h, delta := th.c.Omni.Prefill(s, cache, in, emb)
	th.delta = delta
	return h
}

func (th *thinkerBackbone) text(s *torch.Scope, cache *model.Cache, st *model.Step) *torch.Tensor {
	return th.c.Omni.Continue(s, cache, st, th.delta)
}
