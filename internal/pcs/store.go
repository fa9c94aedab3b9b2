package pcs

import (
	"errors"
	"time"

	"github.com/trustgate/trustgate/internal/tiered"
)

// record is what the persistent tiers hold per document: the body as PCS
// served it, the issuer chain of its response (PEM), and when it was
// fetched (freshness is counted from then).
type record struct {
	Body      []byte    `json:"body"`
	Chain     []byte    `json:"chain,omitempty"`
	FetchedAt time.Time `json:"fetched_at"`
}

// maxRecordSize bounds a record read from a tier.
const maxRecordSize = 2*(maxBody+maxChain) + 4<<10

// recordCodec reads and writes records in the tiers.
var recordCodec = tiered.Codec[record]{MaxSize: maxRecordSize, Check: func(r *record) error {
	if len(r.Body) == 0 || r.FetchedAt.IsZero() {
		return errors.New("no document or fetch time")
	}
	return nil
}}
