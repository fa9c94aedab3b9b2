package certs_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

var snpTestdata = filepath.Join("..", "..", "testdata", "snp")

// trusteeReq is the KDS request for testdata/snp/trustee-report.bin (Milan,
// v2): its VCEK is trustee-vcek.der.
var trusteeReq = func() snp.KeyRequest {
	req, err := certs.ParseKeyRequest("Milan:c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e:bl=3,tee=0,snp=8,ucode=115")
	if err != nil {
		panic(err)
	}
	return req
}()

// realKDS is a fake KDS serving the real AMD chains and the real VCEKs of
// testdata/snp at their real paths.
func realKDS(t *testing.T, now func() time.Time) *testkit.KDS {
	t.Helper()
	k := testkit.NewKDS(t, testkit.KDSOptions{Now: now})
	if err := k.ServeTestdata(snpTestdata); err != nil {
		t.Fatal(err)
	}
	return k
}

func newService(t testing.TB, cfg certs.Config) *certs.Service {
	t.Helper()
	s, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeSleep makes waits advance the fake clock instead of taking time.
func fakeSleep(c *testkit.Clock) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.Add(d)
		return nil
	}
}

func reportEvidence(t testing.TB, name string) snp.Evidence {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(snpTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := snp.DecodeReport(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// counts is an Observer that counts.
type counts struct {
	mu      sync.Mutex
	kds     map[string]int // "kind code"
	lookups map[certs.Lookup]int
}

func newCounts() *counts {
	return &counts{kds: map[string]int{}, lookups: map[certs.Lookup]int{}}
}

func (c *counts) KDSRequest(kind certs.Kind, code string) {
	c.mu.Lock()
	c.kds[string(kind)+" "+code]++
	c.mu.Unlock()
}

func (c *counts) CacheLookup(r certs.Lookup) {
	c.mu.Lock()
	c.lookups[r]++
	c.mu.Unlock()
}

func (c *counts) lookup(r certs.Lookup) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups[r]
}

func pemOf(ders ...[]byte) []byte {
	var b bytes.Buffer
	for _, d := range ders {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	return b.Bytes()
}
