package certs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "snp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A hand-written KDS that serves real VCEKs at exactly the paths and
// queries the real KDS uses, and 404 for anything else. Verifying real reports online through it
// proves the URLs: Milan v2 (product guessed), Genoa A0h and Turin.
func TestVerifyFetchesVCEKFromKDS(t *testing.T) {
	t.Parallel()
	vcek := func(name string) []byte {
		der, err := snp.CertificateDER(testdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	served := map[string][]byte{
		"/vcek/v1/Milan/c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115": vcek("trustee-vcek.der"),
		"/vcek/v1/Turin/0910b4f884ff4ba9?fmcSPL=1&blSPL=3&teeSPL=2&snpSPL=5&ucodeSPL=97":                                                                                                         vcek("openanolis-trustee-turin-vcek.der"),
	}
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RequestURI())
		mu.Unlock()
		if b, ok := served[r.URL.RequestURI()]; ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(b)
			return
		}
		if r.URL.Path == "/vcek/v1/Genoa/"+genoaChip && r.URL.RawQuery == "blSPL=10&teeSPL=0&snpSPL=23&ucodeSPL=25" {
			w.Write(vcek("trustee-genoa-e2e-vcek.der"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: srv.Client(), Dir: t.TempDir(), RateInterval: -1}, KDSURL: srv.URL})
	v := snp.New(snp.Options{Keys: svc})
	for _, name := range []string{"trustee-report.bin", "openanolis-trustee-turin-report.bin", "trustee-genoa-e2e-report.bin"} {
		ev, err := snp.DecodeReport(testdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), ev); err != nil {
			mu.Lock()
			t.Errorf("%s: %v (KDS was asked %q)", name, err, asked)
			mu.Unlock()
		}
	}
}

const genoaChip = "371c55d6d15cb50f16dc31d39a24e300caaabff4431e841111429b73ec45ad67ea6e687ffae7bf84b54a5d0e6d79b3ef6ff0bd8b4cff94c2163af5c5de8718e8"

func TestVCEKURL(t *testing.T) {
	t.Parallel()
	hwid := make([]byte, 64)
	hwid[0] = 0xab
	cases := []struct {
		req  snp.KeyRequest
		want string
	}{
		{snp.KeyRequest{Product: snp.Milan, HWID: hwid, TCB: 0x7308000000000003},
			"https://kds.test/vcek/v1/Milan/ab" + zeros(63) + "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"},
		{snp.KeyRequest{Product: snp.Turin, HWID: hwid[:8], TCB: 0x6100000005020301},
			"https://kds.test/vcek/v1/Turin/ab00000000000000?fmcSPL=1&blSPL=3&teeSPL=2&snpSPL=5&ucodeSPL=97"},
	}
	for _, tc := range cases {
		if got := certs.VCEKURL("https://kds.test/", tc.req); got != tc.want {
			t.Errorf("VCEKURL(%s) =\n %s, want\n %s", tc.req.Product, got, tc.want)
		}
	}
}

func zeros(n int) string {
	s := ""
	for i := 0; i < n; i++ {
		s += "00"
	}
	return s
}

// failingTransport answers every request with err, counting them.
type failingTransport struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return nil, f.err
}

// A host without network (the KDS's name does not resolve) is told so at
// once: one request, no retries; any other transport error is retried, and
// the log says when the next attempt really goes (the rate limit's 10 s,
// not the first backoff's 1 s).
func TestKDSWithoutNetworkGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	ev := reportEvidence(t, "openanolis-trustee-turin-report.bin")
	for _, c := range []struct {
		err      error
		calls    int
		logWants string
	}{
		{&net.DNSError{Err: "no such host", Name: "kdsintf.amd.com", IsNotFound: true}, 1, "giving up"},
		{syscall.ECONNREFUSED, certs.DefaultAttempts, "next_attempt_in=10s"},
	} {
		clock := testkit.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		tr := &failingTransport{err: c.err}
		var logs bytes.Buffer
		svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: &http.Client{Transport: tr}, NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
			KDSURL: "https://kdsintf.amd.com",
		})
		_, err := snp.New(snp.Options{Keys: svc}).Verify(context.Background(), ev)
		var ae *attest.Error
		if !errors.As(err, &ae) || ae.Reason != attest.ReasonVCEKUnavailable {
			t.Errorf("%v: %v, want vcek_unavailable", c.err, err)
		}
		tr.mu.Lock()
		if tr.calls != c.calls {
			t.Errorf("%v: %d requests, want %d", c.err, tr.calls, c.calls)
		}
		tr.mu.Unlock()
		if !strings.Contains(logs.String(), c.logWants) {
			t.Errorf("%v: log lacks %q:\n%s", c.err, c.logWants, logs.String())
		}
	}
}
