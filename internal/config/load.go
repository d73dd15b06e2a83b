package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

const envPrefix = "LATCH_"

// leaf is one settable key, found by reflecting over the yaml tags of Config.
type leaf struct {
	key    string // "mail.smtp.port"
	env    string // "LATCH_MAIL_SMTP_PORT"
	index  []int  // for reflect.Value.FieldByIndex on a Config
	secret bool
	// items are the keys of each item of a list of sections (webhooks), relative to the item: its
	// variables are env + "_<n>_" + the item key's.
	items []leaf
}

var leafFields = sync.OnceValue(func() []leaf {
	return collectLeaves(reflect.TypeFor[Config](), "", nil)
})

var (
	durationType   = reflect.TypeFor[time.Duration]()
	jsonObjectType = reflect.TypeFor[JSONObject]()
)

func collectLeaves(t reflect.Type, prefix string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" {
			panic("config: field " + t.Name() + "." + f.Name + " has no yaml tag")
		}
		key := joinKey(prefix, name)
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, collectLeaves(f.Type, key, idx)...)
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			out = append(out, leaf{key: key, env: envName(key), index: idx, items: collectLeaves(f.Type.Elem(), "", nil)})
			continue
		}
		if !settable(f.Type) {
			// Caught by any test that loads: a new field type needs a parser below.
			panic("config: " + key + ": unsupported type " + f.Type.String())
		}
		out = append(out, leaf{
			key:    key,
			env:    envName(key),
			index:  idx,
			secret: f.Tag.Get("secret") == "true",
		})
	}
	return out
}

func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// newItem is a fresh item of a list of sections, holding its defaults.
func newItem(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	if t == reflect.TypeFor[Webhook]() {
		v.Set(reflect.ValueOf(DefaultWebhook()))
	}
	return v
}

// maxListItems bounds the n of LATCH_<LIST>_<n>_<KEY>, so a typo cannot make a million items.
const maxListItems = 100

// itemEnv reads a variable of an item of a list of sections: its index and the item's key.
func itemEnv(name string) (list leaf, n int, item leaf, ok bool) {
	for _, l := range leafFields() {
		if l.items == nil || !strings.HasPrefix(name, l.env+"_") {
			continue
		}
		num, rest, found := strings.Cut(strings.TrimPrefix(name, l.env+"_"), "_")
		n, err := strconv.Atoi(num)
		if !found || err != nil || n < 0 || n >= maxListItems || strconv.Itoa(n) != num {
			continue
		}
		for _, it := range l.items {
			if envName(it.key) == envPrefix+rest {
				return l, n, it, true
			}
		}
	}
	return leaf{}, 0, leaf{}, false
}

func settable(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Uint8, reflect.Uint32:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Load reads the YAML file at path (a missing file, or path "", is fine only when required is false),
// applies LATCH_* overrides from environ (as os.Environ returns it; a later entry wins over an
// earlier one), then validates. Unknown LATCH_* variables are ignored; see UnknownEnv.
func Load(path string, required bool, environ []string) (Config, error) {
	cfg := Default()
	if err := applyFile(&cfg, path, required); err != nil {
		return Config{}, err
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// UnknownEnv lists the LATCH_* names in environ that match no key, so start-up can warn about a
// misspelt override that Load would otherwise silently ignore.
func UnknownEnv(environ []string) []string {
	known := make(map[string]bool)
	for _, f := range leafFields() {
		known[f.env] = f.items == nil
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, _, _, ok := itemEnv(name); ok {
			continue
		}
		if strings.HasPrefix(name, envPrefix) && !known[name] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

func applyFile(cfg *Config, path string, required bool) error {
	if path == "" {
		if required {
			return errors.New("config: no file given")
		}
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("config: %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: want one YAML document", path)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	root = unalias(root)
	if isNull(root) {
		return nil // a file holding only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s:%d: want a mapping of sections at the top level", path, root.Line)
	}
	fd := fileDecoder{path: path}
	return fd.mapping(reflect.ValueOf(cfg).Elem(), root, "")
}

type fileDecoder struct{ path string }

func (d fileDecoder) source(n *yaml.Node) string { return fmt.Sprintf("%s:%d", d.path, n.Line) }

func (d fileDecoder) mapping(v reflect.Value, n *yaml.Node, prefix string) error {
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, valNode := unalias(n.Content[i]), unalias(n.Content[i+1])
		name := keyNode.Value
		key := joinKey(prefix, name)
		if seen[name] {
			return &KeyError{Key: key, Source: d.source(keyNode), Err: errors.New("set twice")}
		}
		seen[name] = true
		field, ok := fieldByTag(v.Type(), name)
		if !ok || keyNode.Kind != yaml.ScalarNode {
			return &KeyError{Key: key, Source: d.source(keyNode), Err: ErrUnknownKey}
		}
		target := v.FieldByIndex(field.Index)
		if field.Type.Kind() == reflect.Struct {
			if isNull(valNode) {
				continue // "smtp:" with nothing under it keeps the defaults
			}
			if valNode.Kind != yaml.MappingNode {
				return &KeyError{Key: key, Source: d.source(valNode), Err: errors.New("want a mapping of keys")}
			}
			if err := d.mapping(target, valNode, key); err != nil {
				return err
			}
			continue
		}
		if field.Type.Kind() == reflect.Slice && field.Type.Elem().Kind() == reflect.Struct {
			if err := d.sections(target, valNode, key); err != nil {
				return err
			}
			continue
		}
		secret := field.Tag.Get("secret") == "true"
		if err := d.value(target, valNode, secret); err != nil {
			return &KeyError{Key: key, Source: d.source(valNode), Err: err}
		}
	}
	return nil
}

// sections reads a list of sections (webhooks): each item a mapping over the item's defaults.
func (d fileDecoder) sections(target reflect.Value, n *yaml.Node, key string) error {
	items := reflect.MakeSlice(target.Type(), 0, len(n.Content))
	if !isNull(n) {
		if n.Kind != yaml.SequenceNode {
			return &KeyError{Key: key, Source: d.source(n), Err: errors.New("want a list of mappings")}
		}
		for i, itemNode := range n.Content {
			itemNode = unalias(itemNode)
			itemKey := fmt.Sprintf("%s[%d]", key, i)
			if itemNode.Kind != yaml.MappingNode {
				return &KeyError{Key: itemKey, Source: d.source(itemNode), Err: errors.New("want a mapping of keys")}
			}
			item := newItem(target.Type().Elem())
			if err := d.mapping(item, itemNode, itemKey); err != nil {
				return err
			}
			items = reflect.Append(items, item)
		}
	}
	target.Set(items)
	return nil
}

func (d fileDecoder) value(target reflect.Value, n *yaml.Node, secret bool) error {
	if target.Type() == jsonObjectType && n.Kind == yaml.MappingNode {
		var v map[string]any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("want a mapping with string keys: %v", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("cannot be written as JSON: %v", err)
		}
		target.SetString(string(b))
		return nil
	}
	if target.Kind() == reflect.Slice {
		if isNull(n) {
			target.Set(reflect.MakeSlice(target.Type(), 0, 0))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return errors.New("want a list")
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			item = unalias(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				return errors.New("want a list of strings")
			}
			items = append(items, item.Value)
		}
		target.Set(reflect.ValueOf(items))
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a single value")
	}
	if isNull(n) {
		if target.Kind() == reflect.String {
			target.SetString("")
			return nil
		}
		return errors.New("missing value")
	}
	return setScalar(target, n.Value, secret)
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("yaml") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func applyEnv(cfg *Config, environ []string) error {
	byEnv := make(map[string]leaf)
	for _, f := range leafFields() {
		if f.items != nil {
			continue // set item by item
		}
		byEnv[f.env] = f
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if list, n, it, ok := itemEnv(name); ok {
			items := root.FieldByIndex(list.index)
			for items.Len() <= n {
				items.Set(reflect.Append(items, newItem(items.Type().Elem())))
			}
			target := items.Index(n).FieldByIndex(it.index)
			var err error
			if target.Kind() == reflect.Slice {
				target.Set(reflect.ValueOf(splitList(value)))
			} else {
				err = setScalar(target, value, it.secret)
			}
			if err != nil {
				return &KeyError{Key: fmt.Sprintf("%s[%d].%s", list.key, n, it.key), Source: name, Err: err}
			}
			continue
		}
		f, known := byEnv[name]
		if !known {
			continue
		}
		target := root.FieldByIndex(f.index)
		var err error
		if target.Kind() == reflect.Slice {
			target.Set(reflect.ValueOf(splitList(value)))
		} else {
			err = setScalar(target, value, f.secret)
		}
		if err != nil {
			return &KeyError{Key: f.key, Source: name, Err: err}
		}
	}
	return nil
}

// splitList reads a comma separated list; empty entries are dropped so "" is the empty list.
func splitList(s string) []string {
	items := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// setScalar parses raw into target. Messages quote the bad text except for secrets.
func setScalar(target reflect.Value, raw string, secret bool) error {
	quoted := strconv.Quote(raw)
	if secret {
		quoted = "(value hidden)"
	}
	if target.Kind() == reflect.String {
		target.SetString(raw)
		return nil
	}
	text := strings.TrimSpace(raw)
	if target.Type() == durationType {
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("invalid duration %s (want Go syntax such as 90s, 10m or 168h)", quoted)
		}
		target.SetInt(int64(d))
		return nil
	}
	switch target.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("invalid boolean %s (want true or false)", quoted)
		}
		target.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(text, 10, target.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %s", quoted)
		}
		target.SetInt(n)
	case reflect.Uint8, reflect.Uint32:
		n, err := strconv.ParseUint(text, 10, target.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %s (want 0 to %d)", quoted, uint64(1)<<target.Type().Bits()-1)
		}
		target.SetUint(n)
	default:
		panic("config: no parser for " + target.Type().String())
	}
	return nil
}

// NearestEnv is the known variable a mistyped LATCH_ name most likely meant: the one fewest edits
// away, if that is at most two.
func NearestEnv(name string) (string, bool) {
	best, bestDist := "", 3
	for _, l := range leafFields() {
		if d := editDistance(name, l.env); d < bestDist {
			best, bestDist = l.env, d
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
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
