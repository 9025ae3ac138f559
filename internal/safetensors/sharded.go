package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultMaxShardSize is the shard size used when ShardOptions.MaxShardSize
// is not set: 5 GB, the default of Hugging Face transformers.
const DefaultMaxShardSize = 5_000_000_000

// DefaultPrefix is the file name prefix of a model checkpoint:
// model.safetensors, or model-00001-of-0000N.safetensors shards with
// model.safetensors.index.json.
const DefaultPrefix = "model"

// ShardOptions configures a sharded write.
type ShardOptions struct {
	// MaxShardSize bounds the tensor data bytes per shard (headers not
	// counted); a tensor larger than it gets a shard of its own. Zero or
	// negative means DefaultMaxShardSize.
	MaxShardSize int64
	// Prefix names the files; "" means DefaultPrefix.
	Prefix string
	// Metadata is the "__metadata__" of every shard, e.g. {"format": "pt"}.
	Metadata map[string]string
}

func (o ShardOptions) prefix() string {
	if o.Prefix == "" {
		return DefaultPrefix
	}
	return o.Prefix
}

func (o ShardOptions) maxShardSize() int64 {
	if o.MaxShardSize <= 0 {
		return DefaultMaxShardSize
	}
	return o.MaxShardSize
}

// SingleFileName returns the name of an unsharded checkpoint with the given
// prefix ("model.safetensors").
func SingleFileName(prefix string) string { return prefix + ".safetensors" }

// IndexFileName returns the name of the index of a sharded checkpoint with
// the given prefix ("model.safetensors.index.json").
func IndexFileName(prefix string) string { return prefix + ".safetensors.index.json" }

// ShardFileName returns the name of shard i (0-based) of n
// ("model-00001-of-00002.safetensors").
func ShardFileName(prefix string, i, n int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.safetensors", prefix, i+1, n)
}

// PlanShards splits specs, keeping their order, into consecutive groups of at
// most maxShardSize data bytes; a tensor larger than maxShardSize is alone in
// its shard. It always returns at least one (possibly empty) group, and fails
// on an invalid spec.
func PlanShards(specs []TensorSpec, maxShardSize int64) ([][]TensorSpec, error) {
	if maxShardSize <= 0 {
		maxShardSize = DefaultMaxShardSize
	}
	if _, _, err := layout("", specs); err != nil {
		return nil, err
	}
	plan := [][]TensorSpec{nil}
	var size int64
	for _, s := range specs {
		n, _ := ByteSize(s.DType, s.Shape) // validated by layout
		last := len(plan) - 1
		if len(plan[last]) > 0 && n > 0 && size+n > maxShardSize {
			plan = append(plan, nil)
			last, size = last+1, 0
		}
		plan[last] = append(plan[last], s)
		size += n
	}
	return plan, nil
}

// ShardedWriter streams a checkpoint split into shards. Tensors are declared
// up front and written in declared order (through Write or WriteTensor)
// across the shards PlanShards assigns them to.
//
// With a single shard it writes <prefix>.safetensors and no index, as
// transformers does; otherwise <prefix>-0000k-of-0000n.safetensors shards and
// <prefix>.safetensors.index.json.
//
// Atomicity: each shard is built as a synced temporary file. Close then
// removes any previous <prefix> checkpoint's index and single file, renames
// the shards into place, and writes the index last (atomically), so a reader
// sees either the previous checkpoint, no index, or the complete new one;
// never an index naming a partial shard. Shards of an older checkpoint with
// a different shard count are not removed. To replace a whole directory
// atomically, write into a fresh directory and rename it.
type ShardedWriter struct {
	dir      string
	prefix   string
	metadata map[string]string
	shards   [][]TensorSpec
	files    []string // shard file names
	shardOf  map[string]int
	sizes    map[string]int64 // data bytes of each tensor
	writers  []*Writer        // created lazily
	cur      int              // shard being written
	total    int64            // data bytes of all shards
	err      error
	done     bool
}

// CreateSharded plans the shards of specs and returns a writer for them in
// directory dir, which must exist.
func CreateSharded(dir string, specs []TensorSpec, opts ShardOptions) (*ShardedWriter, error) {
	prefix := opts.prefix()
	if !filepath.IsLocal(prefix) || filepath.Base(prefix) != prefix {
		return nil, fileErr(dir, fmt.Errorf("%w: prefix %q must be a plain file name", ErrUnsafePath, prefix))
	}
	plan, err := PlanShards(specs, opts.maxShardSize())
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Path = filepath.Join(dir, prefix)
		}
		return nil, err
	}
	s := &ShardedWriter{
		dir: dir, prefix: prefix, metadata: opts.Metadata, shards: plan,
		files:   make([]string, len(plan)),
		shardOf: make(map[string]int, len(specs)),
		sizes:   make(map[string]int64, len(specs)),
		writers: make([]*Writer, len(plan)),
	}
	for i, group := range plan {
		if len(plan) == 1 {
			s.files[i] = SingleFileName(prefix)
		} else {
			s.files[i] = ShardFileName(prefix, i, len(plan))
		}
		for _, t := range group {
			s.shardOf[t.Name] = i
			n, _ := ByteSize(t.DType, t.Shape)
			s.sizes[t.Name] = n
			s.total += n
		}
	}
	// Create the first shard now, so that an unwritable directory is
	// reported here rather than at the first write.
	if _, err := s.writer(0); err != nil {
		return nil, err
	}
	return s, nil
}

// Files returns the names, relative to the directory, of the files Close
// will produce: the shards, then the index if there is more than one shard.
func (s *ShardedWriter) Files() []string {
	out := append([]string{}, s.files...)
	if len(s.files) > 1 {
		out = append(out, IndexFileName(s.prefix))
	}
	return out
}

// writer returns the writer of shard i, creating it on first use.
func (s *ShardedWriter) writer(i int) (*Writer, error) {
	if s.writers[i] == nil {
		w, err := Create(filepath.Join(s.dir, s.files[i]), s.shards[i], s.metadata)
		if err != nil {
			return nil, s.fail(err)
		}
		s.writers[i] = w
	}
	return s.writers[i], nil
}

// fail poisons the writer, discards every temporary file and returns err.
func (s *ShardedWriter) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	s.Abort()
	return s.err
}

// check reports a poisoned or closed writer.
func (s *ShardedWriter) check() error {
	if s.err != nil {
		return s.err
	}
	if s.done {
		return fileErr(s.dir, ErrClosed)
	}
	return nil
}

// advance finishes every complete shard from the current one on, stopping at
// the first shard that still needs data (or past the last shard).
func (s *ShardedWriter) advance() error {
	for s.cur < len(s.shards) {
		w, err := s.writer(s.cur)
		if err != nil {
			return err
		}
		if !w.complete() {
			return nil
		}
		if err := w.finish(); err != nil {
			return s.fail(err)
		}
		s.cur++
	}
	return nil
}

// Write appends p to the data, moving on to the next shard when one is
// full. Writing more than the declared total is an ErrSize error.
func (s *ShardedWriter) Write(p []byte) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if err := s.advance(); err != nil {
			return n, err
		}
		if s.cur == len(s.shards) {
			return n, s.fail(fileErr(s.dir, fmt.Errorf("%w: %d bytes written past the declared %d bytes of data", ErrSize, len(p), s.total)))
		}
		w := s.writers[s.cur]
		k := min(int64(len(p)), w.total-w.written)
		m, err := w.Write(p[:k])
		n += m
		if err != nil {
			return n, s.fail(err)
		}
		p = p[k:]
	}
	return n, s.advance()
}

// WriteTensor writes the whole data of the named tensor, which must be the
// next one in declared order and have exactly its declared byte length.
// Zero-size tensors need no call.
func (s *ShardedWriter) WriteTensor(name string, data []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	i, ok := s.shardOf[name]
	if !ok {
		return s.fail(tensorErr(s.dir, name, fmt.Errorf("%w: not declared", ErrNotFound)))
	}
	if s.sizes[name] == 0 && len(data) == 0 {
		return nil // nothing to write, wherever the tensor is
	}
	if err := s.advance(); err != nil {
		return err
	}
	if i != s.cur {
		return s.fail(tensorErr(filepath.Join(s.dir, s.files[i]), name,
			fmt.Errorf("%w: the tensor is in shard %d but shard %d is being written", ErrOrder, i+1, s.cur+1)))
	}
	if err := s.writers[i].WriteTensor(name, data); err != nil {
		return s.fail(err)
	}
	return s.advance()
}

// Close checks that all data was written, then puts the shards and the index
// in place as described on ShardedWriter. On error every file it created is
// removed.
func (s *ShardedWriter) Close() error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.advance(); err != nil {
		return err
	}
	if s.cur < len(s.shards) {
		w := s.writers[s.cur]
		return s.fail(tensorErr(w.path, w.current(), fmt.Errorf("%w: shard %d of %d is incomplete: %d of %d data bytes written",
			ErrSize, s.cur+1, len(s.shards), w.written, w.total)))
	}
	single := filepath.Join(s.dir, SingleFileName(s.prefix))
	index := filepath.Join(s.dir, IndexFileName(s.prefix))
	sharded := len(s.shards) > 1
	if sharded {
		// Without the old index and single file, a crash below leaves no
		// checkpoint rather than an index naming a mix of shards.
		for _, p := range []string{index, single} {
			if err := removeIfExists(p); err != nil {
				return s.fail(fileErr(p, stripPath(err)))
			}
		}
		if err := syncDir(s.dir); err != nil {
			return s.fail(fileErr(s.dir, stripPath(err)))
		}
	}
	for i, w := range s.writers {
		if err := w.commit(); err != nil {
			s.removeCommitted(i)
			return s.fail(err)
		}
	}
	if sharded {
		data, err := s.indexJSON()
		if err == nil {
			err = writeFileAtomic(index, data)
		}
		if err != nil {
			s.removeCommitted(len(s.writers))
			return s.fail(fileErr(index, stripPath(err)))
		}
	} else if err := removeIfExists(index); err != nil {
		return s.fail(fileErr(index, stripPath(err)))
	}
	s.done = true
	if err := syncDir(s.dir); err != nil {
		return fileErr(s.dir, stripPath(err))
	}
	return nil
}

// removeCommitted removes the shards renamed into place before shard n.
func (s *ShardedWriter) removeCommitted(n int) {
	for _, w := range s.writers[:n] {
		os.Remove(w.path)
	}
}

// indexJSON encodes the index the way transformers writes it.
func (s *ShardedWriter) indexJSON() ([]byte, error) {
	idx := indexJSON{WeightMap: make(map[string]string, len(s.shardOf))}
	idx.Metadata.TotalSize = s.total
	for name, i := range s.shardOf {
		idx.WeightMap[name] = s.files[i]
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(idx); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// indexJSON is the layout of model.safetensors.index.json as written.
type indexJSON struct {
	Metadata struct {
		TotalSize int64 `json:"total_size"`
	} `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// Abort discards everything not yet committed. It is a no-op after a
// successful Close, so it is safe to defer.
func (s *ShardedWriter) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	if s.err == nil {
		s.err = fileErr(s.dir, ErrClosed)
	}
	var first error
	for _, w := range s.writers {
		if w != nil {
			if err := w.Abort(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// WriteSharded atomically writes tensors to dir as a (possibly sharded)
// checkpoint, per ShardedWriter. Tensors are written in SortSpecs order.
func WriteSharded(dir string, tensors []Tensor, opts ShardOptions) error {
	return writeSorted(tensors, func(specs []TensorSpec) (tensorWriter, error) { return CreateSharded(dir, specs, opts) })
}
