package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/trustgate/trustgate/internal/launch"
)

// PathLaunches lists the launch records (SPEC "Fleet operations").
const PathLaunches = "/admin/v1/launches"

// ReasonLaunchNotFound is GET /admin/v1/launches?launch=P's 404: no record
// of that launch (never attested, or past the retention).
const ReasonLaunchNotFound = "launch_not_found"

// Listing bounds: DefaultLaunchLimit records unless ?limit= says otherwise,
// at most MaxLaunchLimit.
const (
	DefaultLaunchLimit = 1000
	MaxLaunchLimit     = 10000
)

// LaunchRecords are the launch records an admin may read (launch.Store).
type LaunchRecords interface {
	Get(ctx context.Context, l launch.Pseudonym) (launch.Record, bool, error)
	List(ctx context.Context, limit int) ([]launch.Record, error)
}

// Launch is one record as GET /admin/v1/launches shows it: pseudonym
// prefixes (16 hex characters), never an identity.
type Launch struct {
	// Launch is the launch pseudonym's prefix (its full value with
	// ?launch=).
	Launch    string    `json:"launch"`
	TEE       string    `json:"tee"`
	Seq       uint64    `json:"seq"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Chip is the prefix of the pseudonym of the chip the launch was
	// first attested from; "" when none is known.
	Chip string `json:"chip"`
	// Anomaly: an attestation of the launch from another chip was
	// affirmed.
	Anomaly bool `json:"anomaly"`
}

// Launches is the answer of GET /admin/v1/launches, most recently seen
// first.
type Launches struct {
	Launches []Launch `json:"launches"`
	// Truncated: there may be more records than the limit.
	Truncated bool `json:"truncated"`
}

func view(r launch.Record, full bool) Launch {
	l := Launch{Launch: r.Launch.Prefix(), TEE: r.TEE, Seq: r.Seq, FirstSeen: r.FirstSeen.UTC(), LastSeen: r.LastSeen.UTC(), Chip: r.Chip.Prefix(), Anomaly: r.Anomaly}
	if full {
		l.Launch = r.Launch.String()
	}
	return l
}

// launches serves GET /admin/v1/launches: every record (up to ?limit=),
// or with ?launch=<64 hex> the record of that pseudonym (as `trustgate
// fleet lookup` computes it), shown in full.
func (h *handler) launches(w http.ResponseWriter, r *http.Request, c *call) {
	if h.o.Launches == nil {
		writeJSON(w, http.StatusOK, Launches{Launches: []Launch{}})
		return
	}
	q := r.URL.Query()
	if s := q.Get("launch"); s != "" {
		p, err := launch.ParsePseudonym(s)
		if err != nil {
			refuse(w, c, http.StatusBadRequest, ReasonMalformedRequest, "launch: "+err.Error())
			return
		}
		rec, ok, err := h.o.Launches.Get(r.Context(), p)
		if err != nil {
			refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the launch records' store did not answer")
			return
		}
		if !ok {
			refuse(w, c, http.StatusNotFound, ReasonLaunchNotFound, "no record of this launch (never attested, or past the retention)")
			return
		}
		writeJSON(w, http.StatusOK, Launches{Launches: []Launch{view(rec, true)}})
		return
	}
	limit := DefaultLaunchLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLaunchLimit {
			refuse(w, c, http.StatusBadRequest, ReasonMalformedRequest, "limit: want 1 to "+strconv.Itoa(MaxLaunchLimit))
			return
		}
		limit = n
	}
	recs, err := h.o.Launches.List(r.Context(), limit+1)
	if err != nil {
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the launch records' store did not answer")
		return
	}
	slices.SortFunc(recs, func(a, b launch.Record) int { return b.LastSeen.Compare(a.LastSeen) })
	out := Launches{Launches: make([]Launch, 0, min(len(recs), limit)), Truncated: len(recs) > limit}
	for i, rec := range recs {
		if i == limit {
			break
		}
		out.Launches = append(out.Launches, view(rec, false))
	}
	writeJSON(w, http.StatusOK, out)
}
