package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// NewHTTPClient returns an HTTP client for a verifier, with a 30 s timeout,
// that follows no redirect (a 3xx answer is returned as it is; Client
// makes it a *RedirectError).
// caFile (PEM) replaces the system roots for the verifier's certificate;
// certFile and keyFile (PEM, both or neither) are the client certificate
// a verifier with client_ca asks for. All may be empty.
func NewHTTPClient(caFile, certFile, keyFile string) (*http.Client, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		tr.TLSClientConfig.RootCAs = x509.NewCertPool()
		if !tr.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificates", caFile)
		}
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr, CheckRedirect: noRedirect}, nil
}
