package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/app/apptest"
	"github.com/trustgate/trustgate/internal/release"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/sim"
)

// verifier serves a --dev-simulator verifier granting the simulator's
// default build the resource "s".
func verifier(t *testing.T) string {
	return apptest.Start(t, apptest.SimVerifier(t, map[string]string{"s": "secret"}, "s"))
}

// flaky answers the first n challenges with 503, then passes through.
func flaky(t *testing.T, target string, n int32) (string, *atomic.Int32) {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var challenges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == v1.PathChallenge && challenges.Add(1) <= n {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"busy","reason":"store_unavailable"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &challenges
}

func simDevice(t *testing.T, o sim.Options) agent.Device {
	s, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return agent.SimDevice{Sim: s}
}

func TestFetchRetriesOn503(t *testing.T) {
	t.Parallel()
	u, challenges := flaky(t, verifier(t), 2)
	got, err := agent.Fetch(context.Background(), agent.Options{
		Client: &client.Client{BaseURL: u}, Device: simDevice(t, sim.Options{}), Resources: []string{"s"}, Backoff: 10 * time.Millisecond, FetchVerifierKeys: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Resources["s"]) != "secret" || challenges.Load() != 3 {
		t.Fatalf("released %q after %d challenges, want secret after 3", got.Resources, challenges.Load())
	}

	// Out of attempts: the last 503 is the answer.
	u, challenges = flaky(t, verifier(t), 100)
	_, err = agent.Fetch(context.Background(), agent.Options{
		Client: &client.Client{BaseURL: u}, Device: simDevice(t, sim.Options{}), Attempts: 3, Backoff: time.Millisecond,
	})
	var api *client.APIError
	if !errors.As(err, &api) || api.Reason != "store_unavailable" || challenges.Load() != 3 {
		t.Fatalf("%v after %d challenges, want store_unavailable after 3", err, challenges.Load())
	}
}

// A refusal is final: one attempt, the verifier's reason.
func TestFetchDoesNotRetryRefusals(t *testing.T) {
	t.Parallel()
	u, challenges := flaky(t, verifier(t), 0)
	m := [48]byte{1}
	_, err := agent.Fetch(context.Background(), agent.Options{
		Client: &client.Client{BaseURL: u}, Device: simDevice(t, sim.Options{Measurement: &m}), Backoff: time.Millisecond,
	})
	var api *client.APIError
	if !errors.As(err, &api) || api.Reason != "measurement_mismatch" || challenges.Load() != 1 {
		t.Fatalf("%v after %d challenges", err, challenges.Load())
	}
	// A failing device is not retried either.
	_, err = agent.Fetch(context.Background(), agent.Options{Client: &client.Client{BaseURL: u}, Device: brokenDevice{}, Backoff: time.Millisecond})
	var dev *agent.DeviceError
	if !errors.As(err, &dev) || challenges.Load() != 2 || !strings.Contains(err.Error(), "firmware said no") {
		t.Fatalf("%v after %d challenges", err, challenges.Load())
	}
}

type brokenDevice struct{}

func (brokenDevice) Report(context.Context, [64]byte) ([]byte, []byte, error) {
	return nil, nil, errors.New("firmware said no")
}

// The most a release may carry (64 resources of the largest size) reaches
// the agent whole.
func TestFetchLargestRelease(t *testing.T) {
	t.Parallel()
	res := map[string]string{}
	var names []string
	for i := range release.MaxResources {
		n := fmt.Sprintf("r%02d", i)
		res[n] = strings.Repeat(string(rune('a'+i%26)), resources.MaxSize)
		names = append(names, n)
	}
	u := apptest.Start(t, apptest.SimVerifier(t, res, names...))
	got, err := agent.Fetch(context.Background(), agent.Options{Client: &client.Client{BaseURL: u}, Device: simDevice(t, sim.Options{}), Resources: names, Attempts: 1, FetchVerifierKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if string(got.Resources[n]) != res[n] {
			t.Fatalf("%s: %d bytes, want %d", n, len(got.Resources[n]), len(res[n]))
		}
	}
}

// Secrets are written only into a directory of this user, never through
// a symlink.
func TestWriteResourcesRefusesForeignDirectories(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	if err := agent.WriteResources(link, map[string][]byte{"s": []byte("x")}); err == nil {
		t.Error("written through a symlink")
	}
	if os.Geteuid() == 0 { // CI runs as root: make a directory of another user
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 4242, 4242)
		if err := agent.WriteResources(other, map[string][]byte{"s": []byte("x")}); err == nil || !strings.Contains(err.Error(), "uid 4242") {
			t.Errorf("written into another user's directory: %v", err)
		}
	}
	if err := agent.WriteResources(real, map[string][]byte{"s": []byte("x")}); err != nil {
		t.Fatalf("own directory: %v", err)
	}
}

// A proxy's 502 or 504 is worth another attempt, like the verifier's 503.
func TestRetryableStatuses(t *testing.T) {
	for status, want := range map[int]bool{502: true, 503: true, 504: true, 500: false, 401: false, 403: false, 400: false} {
		if got := agent.Retryable(&client.APIError{Status: status}); got != want {
			t.Errorf("%d: retryable %v", status, got)
		}
	}
	if agent.Retryable(errors.New("the release does not decrypt")) {
		t.Error("a decryption failure is retryable")
	}
}

// A 503's Retry-After is honoured (the verifier may be fetching the
// guest's VCEK from AMD's KDS), up to MaxRetryAfter.
func TestFetchHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	target, _ := url.Parse(verifier(t))
	proxy := httputil.NewSingleHostReverseProxy(target)
	for _, tc := range []struct {
		header  string
		max     time.Duration
		atLeast time.Duration
	}{
		{"1", 0, 900 * time.Millisecond},                       // waited as asked, not the 1 ms backoff
		{"3600", 50 * time.Millisecond, 40 * time.Millisecond}, // capped
	} {
		var n atomic.Int32
		var first, second atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == v1.PathChallenge {
				switch n.Add(1) {
				case 1:
					first.Store(time.Now().UnixNano())
					w.Header().Set("Retry-After", tc.header)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					w.Write([]byte(`{"error":"fetching","reason":"vcek_unavailable"}`))
					return
				case 2:
					second.Store(time.Now().UnixNano())
				}
			}
			proxy.ServeHTTP(w, r)
		}))
		start := time.Now()
		_, err := agent.Fetch(context.Background(), agent.Options{
			Client: &client.Client{BaseURL: srv.URL}, Device: simDevice(t, sim.Options{}), Backoff: time.Millisecond, MaxRetryAfter: tc.max,
		})
		srv.Close()
		if err != nil {
			t.Fatalf("Retry-After %s: %v", tc.header, err)
		}
		gap := time.Duration(second.Load() - first.Load())
		if gap < tc.atLeast || time.Since(start) > 30*time.Second {
			t.Errorf("Retry-After %s (max %v): next attempt after %v, want at least %v", tc.header, tc.max, gap, tc.atLeast)
		}
	}
}
