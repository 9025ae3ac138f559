package recipes

import (
	"reflect"
	"slices"
	"strings"
)

// EnvPrefix starts the name of every recipe environment variable.
const EnvPrefix = "MOSE_"

// keyInfo describes one leaf key of the recipe, e.g. "train.lr".
type keyInfo struct {
	key   string       // dotted recipe key
	env   string       // environment variable, e.g. MOSE_TRAIN_LR
	index []int        // reflect field index path from Config
	typ   reflect.Type // Go type of the field
}

// The key table, built once from Config's mapstructure tags so that it can
// never drift from the struct.
var (
	keyTable  []keyInfo           // leaves in struct (= YAML) order
	keyByName map[string]*keyInfo // leaf key -> info
	keyByEnv  map[string]*keyInfo // env var -> info
	sections  map[string]bool     // "run", "adapters.experts", ...
	// envSections are the prefixes (MOSE_RUN_, MOSE_TRAIN_, ...) that mark an
	// environment variable as a recipe variable.
	envSections []string
)

func init() {
	sections = map[string]bool{}
	walkKeys(reflect.TypeFor[Config](), "", nil)
	keyByName = make(map[string]*keyInfo, len(keyTable))
	keyByEnv = make(map[string]*keyInfo, len(keyTable))
	for i := range keyTable {
		k := &keyTable[i]
		keyByName[k.key] = k
		keyByEnv[k.env] = k
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		envSections = append(envSections, EnvPrefix+strings.ToUpper(tagName(f))+"_")
	}
}

func walkKeys(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + tagName(f)
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct {
			sections[key] = true
			walkKeys(f.Type, key+".", idx)
			continue
		}
		keyTable = append(keyTable, keyInfo{key: key, env: envName(key), index: idx, typ: f.Type})
	}
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return name
}

// envName maps a recipe key to its environment variable: MOSE_, then the key
// upper-cased with dots replaced by underscores (train.max_steps ->
// MOSE_TRAIN_MAX_STEPS).
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every recipe key ("run.name", ..., "eval.ar.dump_stats") in the
// order YAML writes them.
func Keys() []string {
	out := make([]string, len(keyTable))
	for i, k := range keyTable {
		out[i] = k.key
	}
	return out
}

// EnvVar returns the environment variable that sets key ("" if key is not a
// recipe key).
func EnvVar(key string) string {
	if k, ok := keyByName[key]; ok {
		return k.env
	}
	return ""
}

// Lookup returns the value of a recipe key in c, e.g. c.Lookup("train.lr").
func (c *Config) Lookup(key string) (any, bool) {
	k, ok := keyByName[key]
	if !ok || c == nil {
		return nil, false
	}
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index).Interface(), true
}

// isRecipeEnv reports whether an environment variable name is in the
// recipe's namespace: MOSE_ followed by a section name and an underscore.
func isRecipeEnv(name string) bool {
	for _, p := range envSections {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to an unknown one, or "".
func suggest(unknown string, candidates []string) string {
	best, bestD := "", 3 // suggest only within an edit distance of 2
	for _, c := range candidates {
		if d := editDistance(unknown, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// knownKeys lists all leaf keys and sections (for suggestions).
func knownKeys() []string {
	out := Keys()
	for s := range sections {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
