package refvalues

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/internal/atomicfile"
)

// Append adds m to the reference-values file at path, creating the file if
// it does not exist. Everything already there is kept: the other
// measurements, min_tcb, allowed_vmpl and, in YAML, comments (key order is
// kept in both formats; whitespace may be normalised). The file is
// replaced atomically and keeps its permissions.
//
// A label already in the file gives a *DuplicateLabelError; an invalid m,
// or a file that would not pass Load afterwards, gives a *ValidationError;
// in both cases the file is left untouched.
func Append(path string, m Measurement) error {
	f, err := FormatOf(path)
	if err != nil {
		return err
	}
	if err := (&Set{Measurements: []Measurement{m}}).Validate(); err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o644)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return err
	default:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	var out []byte
	switch f {
	case JSON:
		out, err = appendJSON(old, m)
	case YAML:
		out, err = appendYAML(old, m)
	}
	if err != nil {
		return fmt.Errorf("reference values %s: %w", path, err)
	}
	if _, err := Parse(out, f); err != nil {
		return fmt.Errorf("reference values %s: refusing to write: %w", path, err)
	}
	return atomicfile.Write(path, out, mode)
}

// checkLabels refuses label if one of the existing labels equals it.
func checkLabels(labels []string, label string) error {
	for _, l := range labels {
		if l == label {
			return &DuplicateLabelError{Label: label}
		}
	}
	return nil
}

// member is one member of a JSON object, its value as written.
type member struct {
	key string
	val json.RawMessage
}

// jsonMembers splits a JSON document's top-level object into its members,
// in order (none for an empty document).
func jsonMembers(old []byte) ([]member, error) {
	var members []member
	if len(bytes.TrimSpace(old)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(old))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, errors.New("decoding JSON: the top level is not an object")
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("decoding JSON: %w", err)
			}
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return nil, fmt.Errorf("decoding JSON: %w", err)
			}
			members = append(members, member{key: tok.(string), val: val})
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("decoding JSON: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("decoding JSON: trailing data after the top-level object")
		}
	}
	return members, nil
}

// appendJSON adds m to the "measurements" array of a JSON document,
// keeping every other member and the member order.
func appendJSON(old []byte, m Measurement) ([]byte, error) {
	members, err := jsonMembers(old)
	if err != nil {
		return nil, err
	}
	entry, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, mb := range members {
		if mb.key == "measurements" {
			idx = i
		}
	}
	var list []json.RawMessage
	if idx >= 0 && string(bytes.TrimSpace(members[idx].val)) != "null" {
		if err := json.Unmarshal(members[idx].val, &list); err != nil {
			return nil, fmt.Errorf("measurements is not an array: %w", err)
		}
	}
	var labels []string
	for _, raw := range list {
		var e struct {
			Label string `json:"label"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("measurements holds a non-object: %w", err)
		}
		labels = append(labels, e.Label)
	}
	if err := checkLabels(labels, m.Label); err != nil {
		return nil, err
	}
	list = append(list, entry)
	arr, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	if idx >= 0 {
		members[idx].val = arr
	} else {
		members = append([]member{{key: "measurements", val: arr}}, members...)
	}
	return writeJSONMembers(members)
}

// writeJSONMembers writes members as one indented JSON object.
func writeJSONMembers(members []member) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, mb := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(mb.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(mb.val)
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// appendYAML adds m to the "measurements" sequence of a YAML document
// through yaml.v3's node tree, which carries the comments along.
func appendYAML(old []byte, m Measurement) ([]byte, error) {
	doc, root, err := yamlRoot(old)
	if err != nil {
		return nil, err
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "measurements" {
			seq = root.Content[i+1]
		}
	}
	if seq == nil {
		key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "measurements"}
		seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append([]*yaml.Node{key, seq}, root.Content...)
	}
	if seq.Kind == yaml.ScalarNode && seq.Tag == "!!null" {
		seq.Kind, seq.Tag, seq.Value = yaml.SequenceNode, "!!seq", ""
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, errors.New("measurements is not a sequence")
	}
	var labels []string
	for _, item := range seq.Content {
		var e struct {
			Label string `yaml:"label"`
		}
		if err := item.Decode(&e); err != nil {
			return nil, fmt.Errorf("measurements holds a non-mapping: %w", err)
		}
		labels = append(labels, e.Label)
	}
	if err := checkLabels(labels, m.Label); err != nil {
		return nil, err
	}
	var entry yaml.Node
	if err := entry.Encode(m); err != nil {
		return nil, err
	}
	if len(seq.Content) == 0 {
		seq.Style = 0 // "measurements: []" becomes a block sequence
	}
	seq.Content = append(seq.Content, &entry)
	return encodeYAML(doc)
}

// yamlRoot decodes a YAML document into yaml.v3's node tree (comments
// included) and returns it with its top-level mapping (made empty for an
// empty document).
func yamlRoot(old []byte) (doc, root *yaml.Node, err error) {
	doc = &yaml.Node{}
	if err := yaml.Unmarshal(old, doc); err != nil {
		return nil, nil, fmt.Errorf("decoding YAML: %w", err)
	}
	if doc.Kind == 0 {
		doc = &yaml.Node{Kind: yaml.DocumentNode}
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, errors.New("decoding YAML: the top level is not a mapping")
	}
	return doc, root, nil
}

// encodeYAML writes doc with an indent of two.
func encodeYAML(doc *yaml.Node) ([]byte, error) {
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
