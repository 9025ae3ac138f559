package recipes

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Load resolves a recipe (a file path, or the name of an embedded preset; see
// Resolve), merges its layers and validates the result. From lowest to
// highest precedence:
//
//  1. Defaults();
//  2. the recipe file;
//  3. MOSE_* environment variables, one per key (see EnvVar): MOSE_TRAIN_LR
//     sets train.lr, MOSE_TRAIN_MAX_STEPS sets train.max_steps;
//  4. sets, each "key=value" as given to --set: train.lr=2e-4,
//     train.betas=[0.9,0.95], adapters.targets=[q_proj,v_proj].
//
// Environment and --set values are parsed as YAML (a scalar or a flow list;
// a list may also be written a,b,c); string keys take the text as written.
// An environment variable named MOSE_ followed by a section and an underscore
// (MOSE_RUN_, MOSE_MODEL_, MOSE_ADAPTERS_, MOSE_LOSS_, MOSE_DATA_,
// MOSE_TRAIN_, MOSE_EVAL_) is a recipe variable and must name a key; other
// MOSE_ variables (MOSE_CACHE, MOSE_DEVICE, ...) belong to other tools and
// are ignored. A set but empty variable counts: MOSE_DATA_EVAL= clears
// data.eval.
//
// After merging, derived defaults are filled in (run.name = the recipe's file
// name without extension, run.output_dir = runs/<name>, eval.batch_size =
// train.batch_size), and the relative paths model.path, data.train,
// data.eval, data.root and run.output_dir are made absolute against the
// current working directory — not the recipe's directory — as mose is run
// from the repository root, like LLaMA-Factory and torchtune. The resolved
// Config therefore no longer depends on where it is read from, which is what
// its saved YAML needs.
//
// Unknown keys, wrong types and out-of-range values are all reported at once
// (errors.Join of *KeyError, each wrapping ErrRecipe) with the key and where
// its value came from.
func Load(nameOrPath string, sets []string) (*Config, error) {
	path, data, err := Resolve(nameOrPath)
	if err != nil {
		return nil, err
	}
	return load(data, path, sets, true)
}

// Parse is Load without the environment and --set layers: data is a recipe's
// YAML and source names it in errors and gives the default run.name. Use it
// for a recipe saved with a checkpoint, which must be read as it was written.
func Parse(data []byte, source string) (*Config, error) {
	return load(data, source, nil, false)
}

// loader merges the layers of one recipe and remembers where each key's value
// came from.
type loader struct {
	path   string
	v      *viper.Viper
	ps     problems
	file   fileValues
	useEnv bool
	setSrc map[string]string // key -> "--set key=value" (the last one wins)
	bad    map[string]bool   // keys whose value could not be decoded
}

func load(data []byte, path string, sets []string, useEnv bool) (*Config, error) {
	l := &loader{path: path, v: viper.New(), useEnv: useEnv, setSrc: map[string]string{}, bad: map[string]bool{}}
	l.v.AllowEmptyEnv(true)
	defaults := Defaults()
	for i := range keyTable {
		l.v.SetDefault(keyTable[i].key, fieldValue(&defaults, &keyTable[i]))
	}

	var err error
	if l.file, err = decodeFile(data, path, &l.ps); err != nil {
		return nil, err
	}
	tree := map[string]any{}
	for key, val := range l.file.values {
		setNested(tree, key, val)
	}
	if err := l.v.MergeConfigMap(tree); err != nil {
		return nil, recipeErr("%s: %v", path, err)
	}
	if useEnv {
		l.bindEnv()
	}
	l.applySets(sets)
	l.markBad()

	cfg, err := l.decode()
	if err != nil {
		return nil, err
	}
	if err := cfg.derive(path); err != nil {
		l.ps.addAt(path, "run.output_dir", "%v", err)
	}
	for _, p := range cfg.validate() {
		if !l.bad[p.Key] {
			p.Source = l.source(p.Key)
			l.ps = append(l.ps, p)
		}
	}
	if err := l.ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// bindEnv binds every key to its variable, converts the values found from
// text to the key's type, and reports recipe variables that name no key.
func (l *loader) bindEnv() {
	for i := range keyTable {
		k := &keyTable[i]
		_ = l.v.BindEnv(k.key, k.env) // only fails without arguments
		if _, ok := os.LookupEnv(k.env); !ok {
			continue
		}
		text, _ := l.v.Get(k.key).(string)
		val, err := parseText(k, text)
		if err != nil {
			// Reported; keep a value of the right type so that decoding
			// can go on and report the other problems too.
			l.ps.addAt("env "+k.env, k.key, "%v", err)
			var inFile bool
			if val, inFile = l.file.values[k.key]; !inFile {
				d := Defaults()
				val = fieldValue(&d, k)
			}
		}
		// The override layer holds the typed value; no --set has been
		// applied yet, and a later one overwrites it as it should.
		l.v.Set(k.key, val)
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if isRecipeEnv(name) && keyByEnv[name] == nil {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	envs := make([]string, len(keyTable))
	for i, k := range keyTable {
		envs[i] = k.env
	}
	for _, name := range unknown {
		hint := ""
		if s := suggest(name, envs); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		l.ps.addAt("env "+name, "", "names no recipe key%s; variables starting with MOSE_<SECTION>_ must be MOSE_ and a key in capitals with _ for ., e.g. MOSE_TRAIN_MAX_STEPS", hint)
	}
}

// applySets applies the --set overrides in order.
func (l *loader) applySets(sets []string) {
	for _, s := range sets {
		src := "--set " + s
		key, text, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		k := keyByName[key]
		switch {
		case !ok:
			l.ps.addAt(src, key, "expected key=value, e.g. --set train.lr=2e-4")
		case sections[key]:
			l.ps.addAt(src, key, "is a section: set its keys one by one, e.g. --set %s", exampleKey(key))
		case k == nil:
			l.ps.addAt(src, key, "unknown key%s", didYouMean(key))
		default:
			val, err := parseText(k, text)
			if err != nil {
				l.ps.addAt(src, key, "%v", err)
				continue
			}
			l.v.Set(key, val)
			l.setSrc[key] = src
		}
	}
}

func exampleKey(section string) string {
	for _, k := range keyTable {
		if strings.HasPrefix(k.key, section+".") {
			return k.key + "=..."
		}
	}
	return section + ".<key>=..."
}

// markBad remembers the keys that already have a problem, so that validation
// does not report them a second time.
func (l *loader) markBad() {
	for _, p := range l.ps {
		if p.Key != "" {
			l.bad[p.Key] = true
		}
	}
}

// decode unmarshals the merged layers strictly: every value is already of
// its field's type, so no weak conversion is allowed, and a key that matches
// no field is an error.
func (l *loader) decode() (*Config, error) {
	var cfg Config
	err := l.v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = false
		dc.DecodeHook = nil
	})
	if err != nil {
		return nil, recipeErr("%s: %v", l.path, err)
	}
	cfg.normalize()
	return &cfg, nil
}

// source says where key's final value came from, for error messages.
func (l *loader) source(key string) string {
	if s, ok := l.setSrc[key]; ok {
		return s
	}
	if k := keyByName[key]; k != nil && l.useEnv {
		if _, ok := os.LookupEnv(k.env); ok {
			return "env " + k.env
		}
	}
	if line, ok := l.file.lines[key]; ok {
		return fmt.Sprintf("%s:%d", l.path, line)
	}
	return l.path
}

// derive fills the defaults that depend on other keys and makes paths
// absolute (see Load).
func (c *Config) derive(recipePath string) error {
	if c.Run.Name == "" {
		c.Run.Name = nameFromPath(recipePath)
	}
	if c.Run.OutputDir == "" && c.Run.Name != "" {
		c.Run.OutputDir = filepath.Join("runs", c.Run.Name)
	}
	if c.Eval.BatchSize == 0 {
		c.Eval.BatchSize = c.Train.BatchSize
	}
	for _, p := range []*string{&c.Model.Path, &c.Data.Train, &c.Data.Eval, &c.Data.Root, &c.Data.CacheDir, &c.Run.OutputDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("cannot make %s absolute: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

// nameFromPath is the recipe's file name without directory and extension.
func nameFromPath(path string) string {
	base := filepath.Base(strings.TrimPrefix(path, embeddedPrefix))
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// normalize makes empty lists nil, so that a Config compares equal however an
// empty list was written (viper needs them non-nil: it skips nil values).
func (c *Config) normalize() {
	if len(c.Adapters.Targets) == 0 {
		c.Adapters.Targets = nil
	}
	if len(c.Train.Betas) == 0 {
		c.Train.Betas = nil
	}
	if len(c.Eval.AR.Layers) == 0 {
		c.Eval.AR.Layers = nil
	}
}

// fieldValue returns the value of key k in c; an empty list is returned
// non-nil (viper ignores nil values and would fall through to a lower layer).
func fieldValue(c *Config, k *keyInfo) any {
	f := reflect.ValueOf(c).Elem().FieldByIndex(k.index)
	if f.Kind() == reflect.Slice && f.IsNil() {
		return reflect.MakeSlice(f.Type(), 0, 0).Interface()
	}
	return f.Interface()
}

// setNested stores val at a dotted key in a tree of maps.
func setNested(tree map[string]any, key string, val any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := tree[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[p] = sub
		}
		tree = sub
	}
	tree[parts[len(parts)-1]] = val
}
