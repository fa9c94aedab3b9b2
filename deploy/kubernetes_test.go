package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/policy"
)

// The Kubernetes base's config file sets only keys `trustgate serve
// --config` knows (it refuses others), its policy is the embedded default
// (operators change it in an overlay), and its reference values load. The
// manifests themselves are tested by the module deploy/kubernetes/test.
func TestKubernetesConfigFiles(t *testing.T) {
	t.Parallel()
	c, err := config.Load(filepath.Join("kubernetes", "config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:8443" || c.TLSCert == "" || c.Resources == "" || c.NonceKeyFile == "" || c.TokenKeyFile == "" || c.Redis != "" {
		t.Errorf("config %+v", c)
	}
	b, err := os.ReadFile(filepath.Join("kubernetes", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != policy.DefaultModule() {
		t.Error("deploy/kubernetes/policy.rego is not the embedded default policy (cp internal/policy/default.rego deploy/kubernetes/policy.rego)")
	}
	ref, err := policy.LoadReference(filepath.Join("kubernetes", "reference-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.New(context.Background(), policy.Options{Module: string(b), Reference: ref}); err != nil {
		t.Fatal(err)
	}
}
