package certs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// Every client with a verified certificate has its own KDS budget; the
// clients known by address only share a cap besides their own (issue 21,
// item 18): many addresses cannot take the KDS rate from them.
func TestAddressClientsShareACap(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	b := newClientBudget(30*time.Second, ClientMissBurst, func() time.Time { return now })
	admit := func(client string) error {
		return b.admit(attest.WithClient(context.Background(), client), vkey{})
	}
	// Address clients, each within its own budget, until the shared cap.
	admitted := 0
	for i := range 100 {
		if err := admit(fmt.Sprintf("ip:192.0.2.%d", i)); err != nil {
			if !errors.Is(err, errAnonBudget) {
				t.Fatalf("address %d: %v", i, err)
			}
			break
		}
		admitted++
	}
	if admitted != b.anonBurst() {
		t.Fatalf("%d address clients admitted together, want the shared cap %d", admitted, b.anonBurst())
	}
	// Clients with certificates are not held back by the addresses.
	for i := range 3 {
		for range ClientMissBurst {
			if err := admit(attest.CertClientID(fmt.Sprintf("%032x", i))); err != nil {
				t.Fatalf("certificate client %d: %v", i, err)
			}
		}
		if err := admit(attest.CertClientID(fmt.Sprintf("%032x", i))); !errors.Is(err, errClientBudget) {
			t.Fatalf("certificate client %d past its own burst: %v", i, err)
		}
	}
	// The shared cap refills at its own rate.
	now = now.Add(b.anonEvery())
	if err := admit("ip:198.51.100.1"); err != nil {
		t.Fatalf("after one shared interval: %v", err)
	}
}
