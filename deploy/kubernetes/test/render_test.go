// Package test renders deploy/kubernetes with the kustomize API (what
// `kubectl kustomize` runs), decodes every object strictly against the
// Kubernetes API types, and checks the security properties the manifests
// promise. It is a module of its own so that the Kubernetes libraries stay
// out of trustgate's module graph; scripts/test runs it.
package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// objects is the rendered base, decoded.
type objects struct {
	namespaces  []corev1.Namespace
	accounts    []corev1.ServiceAccount
	configMaps  []corev1.ConfigMap
	services    []corev1.Service
	deployments []appsv1.Deployment
	statefuls   []appsv1.StatefulSet
	pdbs        []policyv1.PodDisruptionBudget
	netpols     []networkingv1.NetworkPolicy
	kinds       []string // "Kind/name", in render order
}

func render(t *testing.T) ([]byte, *objects) {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), "..")
	if err != nil {
		t.Fatalf("kustomize: %v", err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	o := &objects{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var target any
		switch meta.Kind {
		case "Namespace":
			o.namespaces = append(o.namespaces, corev1.Namespace{})
			target = &o.namespaces[len(o.namespaces)-1]
		case "ServiceAccount":
			o.accounts = append(o.accounts, corev1.ServiceAccount{})
			target = &o.accounts[len(o.accounts)-1]
		case "ConfigMap":
			o.configMaps = append(o.configMaps, corev1.ConfigMap{})
			target = &o.configMaps[len(o.configMaps)-1]
		case "Service":
			o.services = append(o.services, corev1.Service{})
			target = &o.services[len(o.services)-1]
		case "Deployment":
			o.deployments = append(o.deployments, appsv1.Deployment{})
			target = &o.deployments[len(o.deployments)-1]
		case "StatefulSet":
			o.statefuls = append(o.statefuls, appsv1.StatefulSet{})
			target = &o.statefuls[len(o.statefuls)-1]
		case "PodDisruptionBudget":
			o.pdbs = append(o.pdbs, policyv1.PodDisruptionBudget{})
			target = &o.pdbs[len(o.pdbs)-1]
		case "NetworkPolicy":
			o.netpols = append(o.netpols, networkingv1.NetworkPolicy{})
			target = &o.netpols[len(o.netpols)-1]
		default:
			t.Fatalf("unexpected kind %q (%s): add it to the test", meta.Kind, meta.Metadata.Name)
		}
		// Unknown or misspelt fields are refused.
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Errorf("%s/%s: %v", meta.Kind, meta.Metadata.Name, err)
		}
		o.kinds = append(o.kinds, meta.Kind+"/"+meta.Metadata.Name)
	}
	return out, o
}

func TestRenderStrict(t *testing.T) {
	t.Parallel()
	_, o := render(t)
	want := []string{"Namespace/trustgate", "ServiceAccount/trustgate", "ServiceAccount/trustgate-redis",
		"ConfigMap/trustgate-config-", "ConfigMap/trustgate-policy-", "Service/trustgate", "Service/trustgate-redis",
		"Deployment/trustgate", "StatefulSet/trustgate-redis", "PodDisruptionBudget/trustgate",
		"NetworkPolicy/trustgate", "NetworkPolicy/trustgate-redis"}
	for _, w := range want {
		if !slices.ContainsFunc(o.kinds, func(k string) bool { return k == w || strings.HasSuffix(w, "-") && strings.HasPrefix(k, w) }) {
			t.Errorf("no %s in %v", w, o.kinds)
		}
	}
	if len(o.kinds) != len(want) {
		t.Errorf("rendered %v, want %d objects", o.kinds, len(want))
	}
}

// kubectl (when installed) renders the same objects.
func TestKubectlKustomize(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not installed; the kustomize API it embeds rendered the base in TestRenderStrict")
	}
	out, err := exec.Command("kubectl", "kustomize", "..").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	ours, _ := render(t)
	count := func(b []byte) int {
		return bytes.Count(b, []byte("\nkind: ")) + bytes.Count(b[:min(len(b), 6)], []byte("kind: "))
	}
	if count(out) != count(ours) {
		t.Errorf("kubectl rendered %d objects, the kustomize API %d", count(out), count(ours))
	}
}

func TestVerifierDeployment(t *testing.T) {
	t.Parallel()
	_, o := render(t)
	if len(o.deployments) != 1 {
		t.Fatalf("%d deployments", len(o.deployments))
	}
	d := o.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", d.Spec.Replicas)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0", ru)
	}
	p := d.Spec.Template.Spec
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the service-account token is mounted")
	}
	checkPodSecurity(t, "verifier", p, 65532)

	// Graceful shutdown fits in the grace period.
	cfg := configOf(t, o)
	delay, _ := time.ParseDuration(cfg["shutdown_delay"])
	timeout, _ := time.ParseDuration(cfg["shutdown_timeout"])
	if delay == 0 || timeout == 0 {
		t.Errorf("config sets no shutdown_delay/shutdown_timeout: %v", cfg)
	}
	if g := p.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= delay+timeout {
		t.Errorf("terminationGracePeriodSeconds %v is not more than shutdown_delay %v + shutdown_timeout %v", g, delay, timeout)
	}
	c := p.Containers[0]
	probe := func(name string, pr *corev1.Probe, path string) {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != path {
			t.Errorf("%s probe %+v, want GET %s", name, pr, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if rp := c.ReadinessProbe; rp != nil && time.Duration(rp.PeriodSeconds*rp.FailureThreshold)*time.Second >= delay {
		t.Errorf("readiness notices shutdown after %d s, not within shutdown_delay %v", rp.PeriodSeconds*rp.FailureThreshold, delay)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	// Config paths point into the volumes mounted there.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	for _, key := range []string{"tls_cert", "tls_key", "policy", "reference_values", "resources", "nonce_key_file", "token_key_file", "launch_key_file", "cert_cache_dir"} {
		path := cfg[key]
		if path == "" {
			t.Errorf("config has no %s", key)
			continue
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(path+"/", m.MountPath+"/") }) {
			t.Errorf("%s %s is in no mounted volume", key, path)
		}
	}
	// Secrets are mounted 0400 and read-only; the cache and the state
	// directory are the only writable mounts.
	for _, v := range p.Volumes {
		m := mounts[v.Name]
		switch {
		case v.Secret != nil:
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				t.Errorf("secret volume %s: defaultMode %v, want 0400", v.Name, v.Secret.DefaultMode)
			}
			if !m.ReadOnly {
				t.Errorf("secret volume %s is mounted writable", v.Name)
			}
		case v.EmptyDir != nil:
			if m.MountPath != "/var/cache/trustgate" && m.MountPath != "/var/lib/trustgate" {
				t.Errorf("emptyDir %s at %s", v.Name, m.MountPath)
			}
		case v.ConfigMap != nil:
			if !m.ReadOnly {
				t.Errorf("configMap volume %s is mounted writable", v.Name)
			}
		default:
			t.Errorf("volume %s of an unexpected type", v.Name)
		}
	}
	secrets := 0
	for _, v := range p.Volumes {
		if v.Secret != nil {
			secrets++
		}
	}
	if secrets < 3 {
		t.Errorf("%d secret volumes, want keys, resources and tls", secrets)
	}

	// The Service and the PodDisruptionBudget select these pods.
	labels := d.Spec.Template.Labels
	for _, s := range o.services {
		if s.Name == "trustgate" && !subset(s.Spec.Selector, labels) {
			t.Errorf("service %s selects %v, pods have %v", s.Name, s.Spec.Selector, labels)
		}
	}
	if len(o.pdbs) != 1 || !subset(o.pdbs[0].Spec.Selector.MatchLabels, labels) {
		t.Errorf("no PodDisruptionBudget selects the verifier")
	} else if mu := o.pdbs[0].Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", mu)
	}
}

// checkPodSecurity asserts the restricted profile: non-root with a numeric
// user, no privilege escalation, read-only root, no capabilities, the
// runtime's seccomp profile.
func checkPodSecurity(t *testing.T, what string, p corev1.PodSpec, uid int64) {
	t.Helper()
	ps := p.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != uid ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s pod securityContext %+v", what, ps)
	}
	for _, c := range p.Containers {
		s := c.SecurityContext
		if s == nil {
			t.Errorf("%s container %s has no securityContext", what, c.Name)
			continue
		}
		if s.RunAsNonRoot == nil || !*s.RunAsNonRoot || s.RunAsUser == nil || *s.RunAsUser != uid {
			t.Errorf("%s container %s: runAsNonRoot %v runAsUser %v", what, c.Name, s.RunAsNonRoot, s.RunAsUser)
		}
		if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			t.Errorf("%s container %s: root filesystem writable", what, c.Name)
		}
		if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
			t.Errorf("%s container %s: privilege escalation allowed", what, c.Name)
		}
		if s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) != 0 {
			t.Errorf("%s container %s: capabilities %+v, want drop ALL", what, c.Name, s.Capabilities)
		}
		if s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s container %s: seccomp %+v", what, c.Name, s.SeccompProfile)
		}
	}
}

func TestRedisPersistence(t *testing.T) {
	t.Parallel()
	_, o := render(t)
	if len(o.statefuls) != 1 {
		t.Fatalf("%d statefulsets", len(o.statefuls))
	}
	s := o.statefuls[0]
	p := s.Spec.Template.Spec
	checkPodSecurity(t, "redis", p, 999)
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("redis: the service-account token is mounted")
	}
	args := strings.Join(p.Containers[0].Args, " ")
	for _, w := range []string{"--appendonly yes", "--appendfsync always", "--dir /data", "--requirepass $(REDIS_PASSWORD)"} {
		if !strings.Contains(args, w) {
			t.Errorf("redis args %q lack %q", args, w)
		}
	}
	if len(s.Spec.VolumeClaimTemplates) != 1 || s.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Fatalf("volume claims %+v", s.Spec.VolumeClaimTemplates)
	}
	if !slices.ContainsFunc(p.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "data" && m.MountPath == "/data" }) {
		t.Error("the claim is not mounted at /data")
	}
}

// The API port admits only the agents' and the monitoring namespaces and
// the agents' CIDRs; the admin port only the operators' namespaces; Redis
// only the verifier. No rule admits everyone (an empty from).
func TestNetworkPolicy(t *testing.T) {
	t.Parallel()
	_, o := render(t)
	pols := map[string]networkingv1.NetworkPolicy{}
	for _, p := range o.netpols {
		pols[p.Name] = p
	}
	v := pols["trustgate"]
	if !slices.Contains(v.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Fatal("the verifier's policy does not restrict ingress")
	}
	got := map[int32][]string{}
	for _, r := range v.Spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			t.Errorf("ingress rule %+v admits every source or port", r)
		}
		for _, port := range r.Ports {
			for _, f := range r.From {
				switch {
				case f.IPBlock != nil:
					got[port.Port.IntVal] = append(got[port.Port.IntVal], "cidr")
				case f.NamespaceSelector != nil && f.PodSelector == nil:
					b, _ := json.Marshal(f.NamespaceSelector.MatchLabels)
					if len(f.NamespaceSelector.MatchLabels) == 0 {
						t.Errorf("port %d admits every namespace", port.Port.IntVal)
					}
					got[port.Port.IntVal] = append(got[port.Port.IntVal], string(b))
				default:
					t.Errorf("port %d: unexpected source %+v", port.Port.IntVal, f)
				}
			}
		}
	}
	want := map[int32][]string{
		8443: {`{"trustgate.io/agents":"true"}`, `{"trustgate.io/monitoring":"true"}`, "cidr"},
		9443: {`{"trustgate.io/operators":"true"}`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ingress %v, want %v", got, want)
	}
	if api := o.deployments[0].Spec.Template.Spec.Containers[0].Ports; len(api) != 1 || api[0].ContainerPort != 8443 {
		t.Errorf("verifier ports %+v, want the API on 8443 only", api)
	}
	r := pols["trustgate-redis"]
	if len(r.Spec.Ingress) != 1 || len(r.Spec.Ingress[0].From) != 1 || r.Spec.Ingress[0].From[0].PodSelector == nil ||
		r.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "verifier" {
		t.Errorf("redis ingress %+v: want the verifier pods only", r.Spec.Ingress)
	}
}

// configOf returns the verifier's config file (flat keys) from its
// ConfigMap.
func configOf(t *testing.T, o *objects) map[string]string {
	t.Helper()
	for _, cm := range o.configMaps {
		if s, ok := cm.Data["config.yaml"]; ok {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(s), &m); err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for k, v := range m {
				out[k] = fmt.Sprint(v)
			}
			return out
		}
	}
	t.Fatal("no ConfigMap holds config.yaml")
	return nil
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
