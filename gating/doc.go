// Package gating routes tokens among the experts of a group and keeps the
// router honest: softmax gates with temperature, top-k with a straight-through
// estimator (or dense), optional training noise, the Switch-style
// load-balancing loss and the router z-loss per (layer, target, group),
// router telemetry reduced on the device, and the dynamic modality weights.
//
// It knows nothing of LoRA: the experts package asks a Gate for per-token
// expert coefficients through its own small interface, and the trainer wires
// the two together.
package gating
