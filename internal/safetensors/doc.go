// Package safetensors reads and writes the safetensors tensor file format and
// sharded checkpoints described by a model.safetensors.index.json file.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// UTF-8 JSON header, then the data buffer. The header maps tensor names to
// their dtype, shape and [begin, end) byte offsets relative to the start of
// the buffer; an optional "__metadata__" entry holds string key/value pairs.
//
// Reading is lazy: [Open] parses and validates only the header and keeps the
// file open, so a loader can copy one tensor at a time (with [File.ReadInto])
// into its destination and keep peak memory near the size of the weights.
// [OpenDir], [OpenIndex] and [OpenCheckpoint] give one view over a
// single-file or sharded checkpoint.
//
// Writing streams: a [Writer] is created with every tensor declared up front,
// writes the header, then accepts the tensors' bytes in declared order. Files
// are written to a temporary file in the destination directory, synced and
// renamed into place, so a reader never sees a partial file. [WriteFile] and
// [WriteSharded] are conveniences for data already in memory, and
// [ShardedWriter] streams a sharded checkpoint with its index.
//
// Every validation failure is an [*Error] naming the file (and tensor, where
// relevant) that wraps one of the package's sentinel errors, so callers can
// test the cause with errors.Is. The package never panics on bad input.
package safetensors
