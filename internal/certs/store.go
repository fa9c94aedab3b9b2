package certs

import (
	"errors"
	"time"

	"github.com/trustgate/trustgate/internal/tiered"
)

// record is what the persistent tiers hold per certificate or CRL: the
// DER bytes as the KDS served them and when they were fetched (freshness
// is counted from then).
type record struct {
	DER       []byte    `json:"der"`
	FetchedAt time.Time `json:"fetched_at"`
}

// maxRecordSize bounds a record read from a tier (a CRL is the largest).
const maxRecordSize = 2*maxCRLSize + 4<<10

// recordCodec reads and writes records in the tiers.
var recordCodec = tiered.Codec[record]{MaxSize: maxRecordSize, Check: func(r *record) error {
	if len(r.DER) == 0 || r.FetchedAt.IsZero() {
		return errors.New("no certificate or fetch time")
	}
	return nil
}}
