package admin

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/testkit"
)

// A verified client certificate is an identity only when ClientCerts is
// set: with a token alone, a listener that verifies client certificates
// still wants the token.
func TestClientCertificateOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	e, _ := policy.New(context.Background(), policy.Options{Reference: fileSet()})
	l := newLayer(LayerOptions{Store: &MemoryStore{}, Engine: e})
	l.Sync(context.Background())
	srv := httptest.NewUnstartedServer(NewHandler(Options{Layer: l, Tokens: []Token{{Secret: []byte(token)}}, Logger: slog.New(slog.DiscardHandler)}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{cert}}}}
	if a := do(t, c, srv.URL, "GET", PathReferenceValues, "", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("certificate without ClientCerts: %d", a.code)
	}
	if a := do(t, c, srv.URL, "GET", PathReferenceValues, "Bearer "+token, ""); a.code != http.StatusOK {
		t.Fatalf("certificate and token: %d %s", a.code, a.body)
	}
}

// A record whose entry names another label than its own (written past
// the API, straight into the store) withdraws its label and is reported;
// its measurement never comes into force under either label.
func TestRecordOfAnotherLabelWithdrawn(t *testing.T) {
	t.Parallel()
	store := &MemoryStore{}
	f := newFixture(t, store, nil, Options{})
	store.Put(context.Background(), "build-2", refvalues.Record{Entry: &refvalues.Measurement{Value: valB, Label: "build-3"}}, Change{TrustKey: "none"})
	if err := f.layer.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := allows(t, f.engine, valB); got != "" || f.layer.LastError() == nil {
		t.Fatalf("a record of another label came into force as %q (last error %v)", got, f.layer.LastError())
	}
}
