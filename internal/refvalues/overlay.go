package refvalues

import (
	"sort"
	"time"
)

// Overlay is the admin layer over the reference-values file: what the
// admin API approved and withdrew. Per label it holds one Record, an
// approval (an entry) or a withdrawal, and a record wins over the file's
// entry of the same label. The file's min_tcb and allowed_vmpl are never
// overlaid. The zero value (and nil) is an empty layer.
type Overlay struct {
	// Version counts the changes made to the layer; it only grows.
	Version int64 `json:"version"`
	// Records are by label.
	Records map[string]Record `json:"records,omitempty"`
	// Withdrawn is, per label, when it was last withdrawn: an approval
	// signed (iat) before it is a replay.
	Withdrawn map[string]time.Time `json:"withdrawn,omitempty"`
	// JTIs are the ids of every signed approval ever accepted.
	JTIs map[string]bool `json:"jtis,omitempty"`
	// TrustKey is the fleet's requirement on approvals, recorded by the
	// first change: "sha256:" and the hex SHA-256 of the trust key's
	// PKIX DER (approvals must be signed by it), "none" (they need not be
	// signed), "" (not recorded yet).
	TrustKey string `json:"trust_key,omitempty"`
}

// Record is the admin layer's word on one label.
type Record struct {
	// Entry is the approved measurement; nil means the label is withdrawn.
	Entry *Measurement `json:"entry,omitempty"`
	// JWS is the entry as the compact JWS it was approved as (SignEntry),
	// when the verifier trusts only signed reference values; "" otherwise.
	// With a trusted key, an approval is taken from its JWS, verified
	// again wherever it is loaded, never from Entry.
	JWS string `json:"jws,omitempty"`
	// By is who made the change (an identity for the audit, never a
	// credential); At is when.
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Withdrawn reports whether r withdraws its label.
func (r Record) Withdrawn() bool { return r.Entry == nil }

// WithOverlay returns the effective reference values: s's measurements
// whose label has no record in o, then o's approved entries in label
// order, with s's min_tcb and allowed_vmpl. A nil s is an empty set; a nil
// or empty o gives s unchanged. s and o are not modified.
func (s *Set) WithOverlay(o *Overlay) *Set {
	if o == nil || len(o.Records) == 0 {
		return s
	}
	out := &Set{}
	if s != nil {
		*out = *s
		out.Measurements = nil
		for _, m := range s.Measurements {
			if _, ok := o.Records[m.Label]; !ok {
				out.Measurements = append(out.Measurements, m)
			}
		}
	}
	labels := make([]string, 0, len(o.Records))
	for l, r := range o.Records {
		if !r.Withdrawn() {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	for _, l := range labels {
		m := *o.Records[l].Entry
		m.Label = l
		out.Measurements = append(out.Measurements, m)
	}
	return out
}

// Label returns the entry labelled l, if s has one.
func (s *Set) Label(l string) (Measurement, bool) {
	if s == nil {
		return Measurement{}, false
	}
	for _, m := range s.Measurements {
		if m.Label == l {
			return m, true
		}
	}
	return Measurement{}, false
}
