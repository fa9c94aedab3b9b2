package app

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// loopbackHostOnly answers 421 to a request whose Host is not a loopback
// name or address. A dev-simulator verifier trusts forged evidence; served
// on loopback only, it must not also answer a page that a DNS-rebinding
// name has pointed at 127.0.0.1.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "dev_simulator: only loopback Host names are served", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (a Host header: name or address, with
// or without a port) is "localhost", a loopback address or the unspecified
// address (which reaches this host). A rebinding attack needs a name: an
// address literal is never re-pointed.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "."), "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && (ip.Unmap().IsLoopback() || ip.IsUnspecified())
}
