package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/launch"
)

// GET /admin/v1/launches lists pseudonym prefixes, sequence numbers,
// first and last seen and the anomaly flag, most recent first; ?launch=
// gives one record by its full pseudonym; it needs the admin credentials.
func TestListLaunches(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st := launch.NewMemoryStore(0, func() time.Time { return t0.Add(time.Hour) })
	k, _ := launch.NewKeyer([]byte(strings.Repeat("k", 32)))
	a, b := k.Launch("sev-snp", []byte("report-id-a")), k.Launch("sev-snp", []byte("report-id-b"))
	chip1, chip2 := k.Chip("sev-snp", []byte("chip-1")), k.Chip("sev-snp", []byte("chip-2"))
	ctx := context.Background()
	st.Commit(ctx, a, "sev-snp", chip1, 0, t0, 24*time.Hour)
	st.Commit(ctx, a, "sev-snp", chip2, 1, t0.Add(time.Minute), 24*time.Hour)
	st.Commit(ctx, b, "sev-snp", launch.Pseudonym{}, 0, t0.Add(2*time.Minute), 24*time.Hour)
	f := newFixture(t, &MemoryStore{}, nil, Options{Launches: st})

	if got := f.do(t, "GET", PathLaunches, "", ""); got.code != http.StatusUnauthorized || got.reason != ReasonUnauthorized {
		t.Fatalf("no credentials: %d %s", got.code, got.reason)
	}
	got := f.do(t, "GET", PathLaunches, "Bearer "+token, "")
	var ls Launches
	if err := json.Unmarshal(got.body, &ls); err != nil || got.code != http.StatusOK {
		t.Fatalf("%d %s", got.code, got.body)
	}
	if len(ls.Launches) != 2 || ls.Truncated {
		t.Fatalf("%+v", ls)
	}
	lb, la := ls.Launches[0], ls.Launches[1]
	if lb.Launch != b.Prefix() || lb.Seq != 1 || lb.Chip != "" || lb.Anomaly ||
		la.Launch != a.Prefix() || la.Seq != 2 || la.Chip != chip1.Prefix() || !la.Anomaly ||
		!la.FirstSeen.Equal(t0) || !la.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("records %+v", ls.Launches)
	}
	if strings.Contains(string(got.body), a.String()) {
		t.Fatal("the listing shows a full pseudonym")
	}
	if got := f.do(t, "GET", PathLaunches+"?limit=1", "Bearer "+token, ""); !strings.Contains(string(got.body), `"truncated":true`) {
		t.Fatalf("limit: %s", got.body)
	}
	got = f.do(t, "GET", PathLaunches+"?launch="+a.String(), "Bearer "+token, "")
	if err := json.Unmarshal(got.body, &ls); err != nil || got.code != 200 || len(ls.Launches) != 1 || ls.Launches[0].Launch != a.String() || ls.Launches[0].Seq != 2 {
		t.Fatalf("one launch: %d %s", got.code, got.body)
	}
	other := k.Launch("sev-snp", []byte("never"))
	if got := f.do(t, "GET", PathLaunches+"?launch="+other.String(), "Bearer "+token, ""); got.code != http.StatusNotFound || got.reason != ReasonLaunchNotFound {
		t.Fatalf("unknown launch: %d %s", got.code, got.reason)
	}
	for _, q := range []string{"?launch=zz", "?limit=0", "?limit=x"} {
		if got := f.do(t, "GET", PathLaunches+q, "Bearer "+token, ""); got.code != http.StatusBadRequest || got.reason != ReasonMalformedRequest {
			t.Fatalf("%s: %d %s", q, got.code, got.reason)
		}
	}
}
