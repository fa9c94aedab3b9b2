package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testkit"
)

// deploy/local/up.sh starts three replicas and Redis with one command:
// every replica is ready, they serve the same token keys, a nonce issued
// by one is honoured by the others (a forged one is not), Redis keeps an
// AOF, and a replica cut off from Redis fails /readyz until Redis is back.
// down.sh --purge removes everything it made.
func TestLocalUp(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	for _, tool := range []string{"redis-server", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed by deploy/local/up.sh", tool)
		}
	}
	project := fmt.Sprintf("tgtest-%d", os.Getpid())
	base := freePorts(t, 3)
	env := append(os.Environ(), "TRUSTGATE_LOCAL_PROJECT="+project, fmt.Sprintf("TRUSTGATE_LOCAL_PORT=%d", base),
		"TRUSTGATE_IMAGE="+img, "TRUSTGATE_LOCAL_NO_BUILD=1")
	t.Cleanup(func() {
		cmd := exec.Command("local/down.sh", "--purge")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("down.sh: %v\n%s", err, out)
		}
		if left, _ := d.Try("ps", "-aq", "--filter", "name=^"+project+"-"); left != "" {
			t.Errorf("down.sh left containers %s", left)
		}
		if left, _ := d.Try("volume", "ls", "-q", "--filter", "name=^"+project+"-"); left != "" {
			t.Errorf("down.sh --purge left volumes %s", left)
		}
		if left, _ := d.Try("images", "-q", project+"-redis"); left != "" {
			t.Errorf("down.sh --purge left the project's Redis image %s", left)
		}
	})
	cmd := exec.Command("local/up.sh")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("up.sh: %v\n%s", err, out)
	}
	var urls []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", base+i))
		if !strings.Contains(string(out), urls[i]) {
			t.Errorf("up.sh did not print %s:\n%s", urls[i], out)
		}
	}
	var jwks []string
	for _, u := range urls {
		if code := waitStatus(t, u+"/readyz", http.StatusOK); code != http.StatusOK {
			t.Fatalf("%s/readyz: %d", u, code)
		}
		_, b := do(t, "GET", u+"/.well-known/jwks.json", "")
		jwks = append(jwks, b)
	}
	if jwks[0] != jwks[1] || jwks[1] != jwks[2] || !strings.Contains(jwks[0], `"kty"`) {
		t.Errorf("replicas serve different token keys: %v", jwks)
	}
	// A nonce from replica 1 is one of the fleet's at replicas 2 and 3:
	// the malformed evidence is what is refused, not the nonce.
	_, b := do(t, "POST", urls[0]+"/v1/challenge", "")
	var ch struct{ Nonce string }
	json.Unmarshal([]byte(b), &ch)
	attest := func(u, nonce string) string {
		_, b := do(t, "POST", u+"/v1/attest", fmt.Sprintf(`{"nonce":%q,"tee":"sev-snp","evidence":{"report":"AAAA"}}`, nonce))
		var e struct{ Reason string }
		json.Unmarshal([]byte(b), &e)
		return e.Reason
	}
	for _, u := range urls[1:] {
		if r := attest(u, ch.Nonce); r != "malformed_evidence" {
			t.Errorf("%s: nonce of replica 1 gave %q, want malformed_evidence", u, r)
		}
	}
	forged := []byte(ch.Nonce)
	forged[5] ^= 1
	if r := attest(urls[2], string(forged)); r != "nonce_invalid" {
		t.Errorf("forged nonce: %q, want nonce_invalid", r)
	}
	// Redis writes an append-only file.
	if logs, _ := d.Try("logs", project+"-redis"); !strings.Contains(logs, "AOF") {
		t.Errorf("redis does not log its AOF:\n%s", logs)
	}
	// Cut off from Redis, a replica is not ready; with Redis back, it is.
	d.Run("stop", "-t", "5", project+"-redis")
	if code := waitStatus(t, urls[0]+"/readyz", http.StatusServiceUnavailable); code != http.StatusServiceUnavailable {
		t.Errorf("without Redis /readyz is %d", code)
	}
	d.Run("start", project+"-redis")
	if code := waitStatus(t, urls[0]+"/readyz", http.StatusOK); code != http.StatusOK {
		t.Errorf("with Redis back /readyz is %d", code)
	}
}

// freePorts returns the first of n consecutive free loopback ports.
// deploy/local/up.sh --dev runs the project's own tools end to end: the
// agent with the simulated device gets its secret from a replica, bench
// loads two replicas with every attestation affirmed, and down.sh --purge
// removes containers, volumes and the project's Redis image.
func TestLocalUpDev(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	project := fmt.Sprintf("tgdev-%d", os.Getpid())
	base, redisPort := freePorts(t, 3), freePorts(t, 1)
	env := append(os.Environ(), "TRUSTGATE_LOCAL_PROJECT="+project, fmt.Sprintf("TRUSTGATE_LOCAL_PORT=%d", base),
		fmt.Sprintf("TRUSTGATE_LOCAL_REDIS_PORT=%d", redisPort), "TRUSTGATE_IMAGE="+img, "TRUSTGATE_LOCAL_NO_BUILD=1")
	t.Cleanup(func() {
		cmd := exec.Command("local/down.sh", "--purge")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("down.sh: %v\n%s", err, out)
		}
		for _, what := range [][]string{{"ps", "-aq", "--filter", "name=^" + project + "-"},
			{"volume", "ls", "-q", "--filter", "name=^" + project + "-"}, {"images", "-q", project + "-redis"}} {
			if left, _ := d.Try(what...); left != "" {
				t.Errorf("down.sh --purge left %s: %s", what[0], left)
			}
		}
		if left, _ := d.Try("images", "-q", img); left == "" {
			t.Errorf("down.sh --purge removed %s, which up.sh did not build", img)
		}
	})
	cmd := exec.Command("local/up.sh", "--dev")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("up.sh --dev: %v\n%s", err, out)
	}
	url := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+i) }
	for i := range 3 {
		if code := waitStatus(t, url(i)+"/readyz", http.StatusOK); code != http.StatusOK {
			t.Fatalf("%s/readyz: %d", url(i), code)
		}
	}
	// The image's own agent and bench, on the host's loopback.
	agentOut, err := d.Try("run", "--rm", "--network", "host", "--entrypoint", "/usr/local/bin/trustgate-agent", img,
		"attest", "--verifier", url(1), "--simulate", "--resource", "db-password", "--out", "/var/cache/trustgate/out")
	if err != nil || !strings.Contains(agentOut, "released db-password") {
		t.Errorf("agent --simulate: %v\n%s", err, agentOut)
	}
	benchOut, err := d.Try("run", "--rm", "--network", "host", img, "bench", "--verifier", url(0), "--verifier", url(2), "-n", "40", "-c", "2")
	if err != nil || !strings.Contains(benchOut, "affirmed     40, refused 0, unavailable 0") {
		t.Errorf("bench: %v\n%s", err, benchOut)
	}
}

func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 30000 + rand.IntN(20000)
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls url for up to 30 s until it answers want, and returns
// the last status (0: no answer).
func waitStatus(t *testing.T, url string, want int) int {
	t.Helper()
	code := 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			code = 0
			continue
		}
		resp.Body.Close()
		if code = resp.StatusCode; code == want {
			break
		}
	}
	return code
}
