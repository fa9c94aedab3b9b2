package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type pki struct {
	pool                           *x509.CertPool
	server                         tls.Certificate
	caFile, certFile, keyFile, dir string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(ca)
	issue := func(serial int64, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(p.dir, name)
		os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return f
	}
	srvDER, srvKey := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "verifier"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "agent-1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	keyDER, _ := x509.MarshalECPrivateKey(cliKey)
	p.caFile, p.certFile, p.keyFile = write("ca.pem", "CERTIFICATE", caDER), write("agent.pem", "CERTIFICATE", cliDER), write("agent.key", "EC PRIVATE KEY", keyDER)
	return p
}

// --ca, --cert and --key: the agent trusts the verifier's CA and presents
// its client certificate to a TLS front that requires one.
func TestAgentMutualTLS(t *testing.T) {
	t.Parallel()
	target, _ := url.Parse(startVerifier(t))
	p := newPKI(t)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	front.StartTLS()
	t.Cleanup(front.Close)

	base := []string{"attest", "--verifier", front.URL, "--simulate", "--attempts", "1"}
	if code, out, errOut := runAgent(append(base, "--ca", p.caFile, "--cert", p.certFile, "--key", p.keyFile)...); code != exitOK || !strings.HasPrefix(out, "AFFIRMING") {
		t.Fatalf("with the client certificate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runAgent(append(base, "--ca", p.caFile)...); code != exitUnavailable {
		t.Errorf("without a client certificate: exit %d, want %d", code, exitUnavailable)
	}
	if code, _, _ := runAgent(base...); code != exitUnavailable {
		t.Errorf("without the CA: exit %d, want %d", code, exitUnavailable)
	}
	if code, _, _ := runAgent(append(base, "--cert", p.certFile)...); code != exitUsage {
		t.Errorf("--cert without --key: exit %d", code)
	}
}
