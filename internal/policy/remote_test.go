package policy

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/testkit"
)

// An external engine that does not answer, or not as OPA does, is
// policy_unavailable; one that answers without a decision, or with a
// decision of the wrong shape, is policy_denied; never an allow.
func TestRemoteFailsClosed(t *testing.T) {
	t.Parallel()
	allow := `{"result":{"allow":true,"reasons":[],"label":"build-1","resources":["db"]}}`
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    attest.Reason // "" = allow
	}{
		{"allow", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, allow) }, ""},
		{"deny with reason", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":false,"reasons":["debug_enabled"]}}`)
		}, attest.ReasonDebugEnabled},
		{"no answer in time", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		}, attest.ReasonPolicyUnavailable},
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, allow, 500) }, attest.ReasonPolicyUnavailable},
		{"404", func(w http.ResponseWriter, r *http.Request) { http.Error(w, allow, 404) }, attest.ReasonPolicyUnavailable},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, attest.ReasonPolicyUnavailable},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>allow</html>`) }, attest.ReasonPolicyUnavailable},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":true},"pad":"`+strings.Repeat("x", 2<<20)+`"}`)
		}, attest.ReasonPolicyUnavailable},
		{"undefined decision", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }, attest.ReasonPolicyDenied},
		{"null result", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"result":null}`) }, attest.ReasonPolicyDenied},
		{"allow as a string", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"result":{"allow":"true"}}`) }, attest.ReasonPolicyDenied},
		{"result not an object", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"result":true}`) }, attest.ReasonPolicyDenied},
		// SPEC "The gatekeeper's configuration never goes back": an
		// ambiguous decision is a deny.
		{"allow with reasons", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":true,"reasons":["measurement_mismatch"],"label":"build-1"}}`)
		}, attest.ReasonPolicyDenied},
		{"allow twice, last true", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":false,"allow":true,"label":"build-1"}}`)
		}, attest.ReasonPolicyDenied},
		{"result twice", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":false},"result":{"allow":true,"label":"build-1"}}`)
		}, attest.ReasonPolicyDenied},
		{"duplicate key deep down", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":true,"label":"build-1","resources":["db"]},"metrics":[{"a":1,"a":2}]}`)
		}, attest.ReasonPolicyDenied},
		{"allow a number", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"result":{"allow":1}}`) }, attest.ReasonPolicyDenied},
		{"unknown key", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":{"allow":true,"admin":true}}`)
		}, attest.ReasonPolicyDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got map[string]json.RawMessage
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v1/data/trustgate/decision" && r.Method == http.MethodPost {
					var body map[string]json.RawMessage
					json.NewDecoder(r.Body).Decode(&body)
					mu.Lock()
					got = body
					mu.Unlock()
				}
				tc.handler(w, r)
			}))
			defer srv.Close()
			rp, err := NewRemote(RemoteOptions{URL: srv.URL + "/v1/data/trustgate/decision", Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d, err := rp.Evaluate(context.Background(), claims(nil))
			if err == nil {
				err = d.Err()
			}
			if r := attest.ReasonOf(err); r != tc.want {
				t.Fatalf("reason %q (%v), want %q", r, err, tc.want)
			}
			if tc.want == "" && (!d.Allow || d.Label != "build-1") {
				t.Fatalf("decision %+v", d)
			}
			if tc.want == attest.ReasonPolicyUnavailable && attest.ReasonOf(err).Status() != 503 {
				t.Fatal("policy_unavailable is not 503")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("took %v with a 2 s timeout", took)
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := got["input"]; !ok && tc.name == "allow" {
				t.Fatalf("the claims were not POSTed as input: %v", got)
			}
		})
	}
}

func TestRemoteUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rp, err := NewRemote(RemoteOptions{URL: url + "/v1/data/trustgate/decision"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Evaluate(context.Background(), claims(nil)); attest.ReasonOf(err) != attest.ReasonPolicyUnavailable {
		t.Fatalf("closed port: %v", err)
	}
	if !attest.ReasonPolicyUnavailable.Unavailable() {
		t.Fatal("policy_unavailable does not exit 3")
	}
	for _, bad := range []string{"", "ftp://x/y", "127.0.0.1:8181/v1/data"} {
		if _, err := NewRemote(RemoteOptions{URL: bad}); err == nil {
			t.Errorf("URL %q accepted", bad)
		}
	}
}

// A real OPA server of the embedded version, loaded with `trustgate policy
// default` and the reference values as data, decides exactly as the
// embedded engine on a corpus of claims: accept, each deny reason, an
// expired value, a TCB below the minimum, VMPL and debug.
func TestRemoteOPAMatchesEmbedded(t *testing.T) {
	t.Parallel()
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	expiredValue := strings.Repeat("77", 48)
	ref := &refvalues.Set{
		Measurements: []refvalues.Measurement{
			{Value: approved, Label: "build-1", Resources: []string{"db-password"}},
			{Value: next, Label: "build-2", Expires: &future, Resources: []string{"db-password", "api-key"}},
			{Value: expiredValue, Label: "build-0", Expires: &past},
			{Value: approved, Label: "build-1b"}, // same value, higher label: build-1 decides
		},
		MinTCB:      &refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115},
		AllowedVMPL: []int{0, 2},
	}
	refJSON, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	url := testkit.StartOPA(t, map[string][]byte{
		"default.rego":                       []byte(DefaultModule()),
		"trustgate.reference:refvalues.json": refJSON,
	})
	remote, err := NewRemote(RemoteOptions{URL: url + "/v1/data/trustgate/decision", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := New(context.Background(), Options{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	fmc := uint8(1)
	corpus := []struct {
		name string
		mut  func(*attest.Claims)
		want attest.Reason
	}{
		{"accept", nil, ""},
		{"accept, staged build", func(c *attest.Claims) { c.Measurement = mustHex(next) }, ""},
		{"accept, vmpl 2 allowed", func(c *attest.Claims) { c.VMPL = 2 }, ""},
		{"accept, Turin with fmc", func(c *attest.Claims) { c.Product = "Turin"; c.ReportedTCB.FMC = &fmc }, ""},
		{"unknown measurement", func(c *attest.Claims) { c.Measurement = mustHex(strings.Repeat("01", 48)) }, attest.ReasonMeasurementMismatch},
		{"expired value", func(c *attest.Claims) { c.Measurement = mustHex(expiredValue) }, attest.ReasonMeasurementMismatch},
		{"debug", func(c *attest.Claims) { c.Policy.Debug = true }, attest.ReasonDebugEnabled},
		{"vmpl 1", func(c *attest.Claims) { c.VMPL = 1 }, attest.ReasonVMPLNotAllowed},
		{"vmpl 3", func(c *attest.Claims) { c.VMPL = 3 }, attest.ReasonVMPLNotAllowed},
		{"microcode below min", func(c *attest.Claims) { c.ReportedTCB.Microcode = 114 }, attest.ReasonTCBBelowMinimum},
		{"snp below min", func(c *attest.Claims) { c.ReportedTCB.SNP = 7 }, attest.ReasonTCBBelowMinimum},
		{"bootloader below min", func(c *attest.Claims) { c.ReportedTCB.Bootloader = 2 }, attest.ReasonTCBBelowMinimum},
		{"every failure", func(c *attest.Claims) {
			c.Measurement = mustHex(expiredValue)
			c.Policy.Debug = true
			c.VMPL = 1
			c.ReportedTCB.SNP = 0
		}, attest.ReasonMeasurementMismatch},
	}
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := claims(tc.mut)
			want, werr := embedded.Evaluate(ctx, c)
			got, gerr := remote.Evaluate(ctx, c)
			if werr != nil || gerr != nil {
				t.Fatalf("embedded %v, remote %v", werr, gerr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("remote %+v, embedded %+v", got, want)
			}
			if r := attest.ReasonOf(got.Err()); r != tc.want {
				t.Fatalf("reason %q, want %q (%+v)", r, tc.want, got)
			}
		})
	}
	// A path OPA has no rule for is an undefined decision: policy_denied.
	undef, _ := NewRemote(RemoteOptions{URL: url + "/v1/data/trustgate/nothing"})
	if _, err := undef.Evaluate(context.Background(), claims(nil)); attest.ReasonOf(err) != attest.ReasonPolicyDenied {
		t.Fatalf("undefined decision: %v", err)
	}
}

// An https:// engine is asked over TLS verified against RemoteOptions.RootCAs
// (policy_ca): with the engine's CA it decides; with the system roots
// only, the TLS handshake fails and nothing is allowed.
func TestRemoteVerifiesTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":{"allow":true,"label":"build-1"}}`)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, tc := range []struct {
		name string
		ca   *x509.CertPool
		want attest.Reason
	}{{"engine's CA", pool, ""}, {"system roots", nil, attest.ReasonPolicyUnavailable}} {
		rp, err := NewRemote(RemoteOptions{URL: srv.URL + "/v1/data/trustgate/decision", RootCAs: tc.ca})
		if err != nil {
			t.Fatal(err)
		}
		d, err := rp.Evaluate(context.Background(), claims(nil))
		if err == nil {
			err = d.Err()
		}
		if attest.ReasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// An external engine's own reason codes leave the verifier only when the
// operator declared them (policy_reason_codes), as an embedded policy's
// only when its module declares them: a reason built from a claim (here
// policy_ and a chip id prefix) is policy_denied and is not quoted.
func TestRemoteReasonsDeclared(t *testing.T) {
	t.Parallel()
	const leak = "policy_3ac3fe21c38427a3"
	cases := []struct {
		name     string
		declared []string
		reasons  string
		want     attest.Reason
	}{
		{"undeclared, none declared", nil, `["` + leak + `"]`, attest.ReasonPolicyDenied},
		{"undeclared beside a declared one", []string{"policy_tcb_status"}, `["` + leak + `"]`, attest.ReasonPolicyDenied},
		{"declared", []string{"policy_tcb_status"}, `["policy_tcb_status"]`, "policy_tcb_status"},
		{"undeclared first, declared second", []string{"policy_tcb_status"}, `["` + leak + `","policy_tcb_status"]`, "policy_tcb_status"},
		{"built-in codes need no declaration", nil, `["measurement_mismatch"]`, attest.ReasonMeasurementMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"result":{"allow":false,"reasons":`+tc.reasons+`}}`)
			}))
			defer srv.Close()
			rp, err := NewRemote(RemoteOptions{URL: srv.URL + "/v1/data/trustgate/decision", ReasonCodes: tc.declared})
			if err != nil {
				t.Fatal(err)
			}
			d, err := rp.Evaluate(context.Background(), claims(nil))
			if err == nil {
				err = d.Err()
			}
			if r := attest.ReasonOf(err); r != tc.want {
				t.Fatalf("reason %q (%v), want %q", r, err, tc.want)
			}
			if strings.Contains(err.Error(), "3ac3") {
				t.Fatalf("the undeclared reason is quoted: %v", err)
			}
		})
	}
	for _, bad := range [][]string{{"policy_Upper"}, {"tcb_status"}, {"policy_" + strings.Repeat("a", 41)}} {
		if _, err := NewRemote(RemoteOptions{URL: "http://127.0.0.1:8181/v1/data/trustgate/decision", ReasonCodes: bad}); err == nil {
			t.Errorf("reason codes %q accepted", bad)
		}
	}
}
