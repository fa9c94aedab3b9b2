package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/internal/testkit"
)

// A mark only goes up: a lower version, or the same with another digest,
// is a *RollbackError from the replica's own directory (across a
// restart) and, with Redis, from the fleet's mark for a replica whose
// directory is empty. The same document again is admitted.
func TestVersionsOnlyGoUp(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	ctx := context.Background()
	open := func() *Dir {
		d, err := OpenDir(filepath.Join(t.TempDir(), "state"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dirA := open()
	a := NewVersions(VersionsOptions{Dir: dirA, Redis: rdb})
	for _, m := range []Mark{{1, "d1"}, {1, "d1"}, {3, "d3"}} {
		if err := a.Admit(ctx, "reference_values", m); err != nil {
			t.Fatalf("admit %+v: %v", m, err)
		}
	}
	rollback := func(v *Versions, m Mark, where string) {
		t.Helper()
		var re *RollbackError
		if err := v.Admit(ctx, "reference_values", m); !errors.As(err, &re) || re.Seen != (Mark{3, "d3"}) || re.Where != where {
			t.Fatalf("admit %+v: %v, want a rollback from %s", m, err, where)
		}
	}
	rollback(a, Mark{2, "d2"}, "this replica")
	rollback(a, Mark{3, "other"}, "this replica")
	// The same directory after a restart, without Redis.
	rollback(NewVersions(VersionsOptions{Dir: dirA}), Mark{1, "d1"}, "this replica")
	// Another replica, empty directory, the fleet's Redis.
	b := NewVersions(VersionsOptions{Dir: open(), Redis: rdb})
	rollback(b, Mark{1, "d1"}, "the fleet (redis)")
	if err := b.Admit(ctx, "reference_values", Mark{4, "d4"}); err != nil {
		t.Fatal(err)
	}
	// Another document has its own mark.
	if err := b.Admit(ctx, "other", Mark{1, "x"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dirA.Path(), "versions.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("versions.json: %v %v", st, err)
	}
}
