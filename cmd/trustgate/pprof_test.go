package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// --pprof-listen serves the pprof endpoints on loopback only: any other
// address is a usage error before anything is served.
func TestPprofListen(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:6060", ":6060", "nonsense"} {
		if ln, err := listenPprof(addr); err == nil {
			ln.Close()
			t.Errorf("%q: listened", addr)
		}
		code, _, errOut := runCLI("serve", "--dev-simulator", "--offline", "--listen", "127.0.0.1:0", "--pprof-listen", addr)
		if code != exitUsage || !strings.Contains(errOut, "--pprof-listen") {
			t.Errorf("serve --pprof-listen %q: exit %d, %s", addr, code, errOut)
		}
	}
	if ln, err := listenPprof(""); ln != nil || err != nil {
		t.Fatalf("off: %v, %v", ln, err)
	}
	ln, err := listenPprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go servePprof(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cmdline: %s", resp.Status)
	}
	// Never on the API listener (net/http/pprof also registers itself on
	// http.DefaultServeMux, which nothing serves).
	api := apptest.Start(t, apptest.SimVerifier(t, nil))
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		resp, err := http.Get(api + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("API listener %s: %s", path, resp.Status)
		}
	}
}
