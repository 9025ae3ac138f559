// Package export turns a checkpoint into what other tools load: a PEFT
// adapter (adapter_config.json + adapter_model.safetensors) with the MoSE
// sidecar, or a merged model directory with the deltas folded into the
// frozen weights (streamed shard by shard, with a measured fidelity where
// the merge is approximate). It also opens PEFT adapters written elsewhere
// (OpenPEFT) and dumps a checkpoint's logits for parity checks (DumpLogits).
package export
