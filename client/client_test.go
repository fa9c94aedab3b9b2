package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustgate/trustgate/client"
)

// No client follows a redirect, whichever HTTP client it is given: a 3xx
// is a *RedirectError naming the status, and the target is never asked.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte(`{"nonce":"` + strings.Repeat("A", 86) + `==","keys":[]}`))
	}))
	t.Cleanup(target.Close)
	hc, err := client.NewHTTPClient("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, status)
		}))
		t.Cleanup(redirector.Close)
		for name, c := range map[string]*client.Client{
			"zero HTTP client":  {BaseURL: redirector.URL},
			"NewHTTPClient":     {BaseURL: redirector.URL, HTTP: hc},
			"caller's defaults": {BaseURL: redirector.URL, HTTP: &http.Client{}},
		} {
			_, errC := c.Challenge(context.Background())
			_, errJ := c.JWKS(context.Background())
			for _, err := range []error{errC, errJ} {
				var re *client.RedirectError
				if !errors.As(err, &re) || re.Status != status || !strings.Contains(err.Error(), http.StatusText(status)) {
					t.Errorf("%d, %s: %v, want a RedirectError naming %d", status, name, err, status)
				}
			}
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect target was asked %d times", n)
	}
	// NewHTTPClient alone (as the bench and third parties use it) does not
	// follow either.
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirector.Close)
	resp, err := hc.Get(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || reached.Load() != 0 {
		t.Errorf("NewHTTPClient: %d, target asked %d times", resp.StatusCode, reached.Load())
	}
}
