package refvalues

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Stamp returns the reference values data (format f) with version set to
// its version + 1 and signed_at to at (UTC, whole seconds), everything
// else kept as Append keeps it, and the stamped Set. It is what `trustgate
// refvalues sign` does before signing, so that an operator never types a
// version. The data must be valid reference values.
func Stamp(data []byte, f Format, at time.Time) ([]byte, *Set, error) {
	cur, err := Parse(data, f)
	if err != nil {
		return nil, nil, err
	}
	version := cur.Version + 1
	signedAt := at.UTC().Truncate(time.Second).Format(time.RFC3339)
	var out []byte
	switch f {
	case JSON:
		members, err := jsonMembers(data)
		if err != nil {
			return nil, nil, err
		}
		q, _ := json.Marshal(signedAt)
		members = setMember(members, "signed_at", q)
		members = setMember(members, "version", json.RawMessage(strconv.FormatInt(version, 10)))
		out, err = writeJSONMembers(members)
		if err != nil {
			return nil, nil, err
		}
	case YAML:
		doc, root, err := yamlRoot(data)
		if err != nil {
			return nil, nil, err
		}
		setYAMLKey(root, "signed_at", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: signedAt})
		setYAMLKey(root, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(version, 10)})
		if out, err = encodeYAML(doc); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("unknown format %d", int(f))
	}
	s, err := Parse(out, f)
	if err != nil {
		return nil, nil, fmt.Errorf("stamping the version: %w", err)
	}
	if s.Version != version {
		return nil, nil, fmt.Errorf("stamping the version: got %d, want %d", s.Version, version)
	}
	return out, s, nil
}

// setMember sets key's value, or puts key first when it is absent.
func setMember(members []member, key string, val json.RawMessage) []member {
	for i := range members {
		if members[i].key == key {
			members[i].val = val
			return members
		}
	}
	return append([]member{{key: key, val: val}}, members...)
}

// setYAMLKey sets key's value in a mapping, or puts key first when it is
// absent (with a comment saying who writes it).
func setYAMLKey(root *yaml.Node, key string, val *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			val.LineComment = root.Content[i+1].LineComment
			root.Content[i+1] = val
			return
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	if key == "version" {
		k.HeadComment = "stamped by `trustgate refvalues sign`: do not edit"
	}
	root.Content = append([]*yaml.Node{k, val}, root.Content...)
}

// Digest identifies the content of s: "sha256:" and the hex SHA-256 of
// its JSON form, so that two files of one version can be told apart
// whatever their comments and layout.
func (s *Set) Digest() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
