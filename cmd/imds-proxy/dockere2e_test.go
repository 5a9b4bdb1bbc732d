//go:build dockere2e

package main

// The seed's own story on a real Docker Engine, as root (`make
// e2e-docker`): the image of `make docker` runs the proxy with the host's
// network and the engine's socket, configs/docker-compose-e2e.yml brings up
// application containers on a user-defined network, `imds-proxy setup
// --mode dnat` sends their 169.254.169.254:80 to the proxy, and inside each
// container the unmodified AWS CLI v2, boto3 and curl, with no AWS
// configuration but moto's STS endpoint, must get that container's own
// instance and role. Tenants name containers: by name, by compose service
// label, by label. Then restarts, a second network, a reused name and the
// start race; finally `docker-compose down` and `setup --remove` must leave
// the host's rules and addresses as they were.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerBudget bounds the whole test: every command runs under it.
const dockerBudget = 200 * time.Second

// The test network: benchmarking addresses (RFC 2544), as in netns_test.go.
const (
	dockerProject   = "imdse2e"
	dockerNetwork   = dockerProject + "_app"
	dockerBridge    = "imdsdk0"
	dockerGateway   = "198.18.1.1"
	dockerSecond    = "imdse2e-second"
	dockerAdminPort = "19180"
	dockerAccount   = "123456789012"
	dockerKeyID     = "AKIADOCKERSTATICKEY1"
	dockerSecret    = "docker-static-secret/0123456789abcdefghijk"
)

// dockerApp is one application container of the compose file.
type dockerApp struct {
	container  string
	tenant     string // "" for no tenant's
	instanceID string
	source     string // the tenant's source, in the proxy's YAML
}

var dockerApps = []dockerApp{
	{"imdse2e-web", "web", "i-0d0c0e2e000000001", "{container: imdse2e-web}"},
	{"imdse2e_worker_1", "worker", "i-0d0c0e2e000000002", "{label: \"com.docker.compose.service=worker\"}"},
	{"imdse2e_migrator_1", "migrator", "i-0d0c0e2e000000003", "{label: \"imds-proxy.tenant=migrator\"}"},
	{"imdse2e_stranger_1", "", "", ""},
}

// Containers the test makes besides the compose file's.
var dockerExtras = []string{"imdse2e-squatter", "imdse2e-racer", "imdse2e-web"}

type dockerEnv struct {
	netnsEnv
	compose []string // docker-compose and its fixed arguments
	env     []string // docker-compose's environment
	client  string   // the client image
	relay   string   // moto, as the containers reach it
}

func TestDockerE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		need(t, "root (iptables, the Docker socket)", errors.New("not root"))
	}
	for _, tool := range []string{"docker", "docker-compose", "iptables-save", "ip"} {
		_, err := exec.LookPath(tool)
		need(t, tool, err)
	}
	image, client := os.Getenv("IMDS_E2E_PROXY_IMAGE"), os.Getenv("IMDS_E2E_CLIENT_IMAGE")
	if image == "" || client == "" {
		need(t, "IMDS_E2E_PROXY_IMAGE and IMDS_E2E_CLIENT_IMAGE (make e2e-docker sets them)", errors.New("unset"))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), dockerBudget)
	t.Cleanup(cancel)
	e := &dockerEnv{netnsEnv: netnsEnv{ctx: ctx}, client: client,
		compose: []string{"docker-compose", "-p", dockerProject, "-f", "../../configs/docker-compose-e2e.yml"}}

	dockerCheckImage(t, e, image)
	e.cleanup(t) // a killed run's leftovers
	before := netnsSnapshot(t, &e.netnsEnv)
	m := motoStart(t)
	dir := dockerConfigDir(t)
	sock, err := os.Stat("/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	e.env = append(os.Environ(), "IMDS_PROXY_IMAGE="+image, "CLIENT_IMAGE="+client, "IMDS_CONFIG_DIR="+dir,
		"AWS_ENDPOINT_URL_STS="+m.url, "IMDS_ADMIN_PORT="+dockerAdminPort,
		"DOCKER_GID="+strconv.Itoa(int(fileGID(sock))))
	t.Cleanup(func() {
		// A fresh context: the test's own may have run out.
		e.ctx = context.Background()
		e.cleanup(t)
		netnsSetup(t, &e.netnsEnv, "--remove")
		if after := netnsSnapshot(t, &e.netnsEnv); after != before {
			t.Errorf("docker-compose down and setup --remove did not restore the host:\n%s", netnsDiff(before, after))
		}
		if out := e.must(t, "docker", "ps", "-aq", "--filter", "name=imdse2e"); strings.TrimSpace(out) != "" {
			t.Errorf("containers left behind: %s", out)
		}
	})

	// As the README says: the rules name the bridges, so they go in first;
	// imdsdk1 is the second network's, which takes the default route.
	netnsSetup(t, &e.netnsEnv, "--mode", "dnat", "--bridge", dockerBridge, "--bridge", "imdsdk1", "--to", dockerGateway+":8080", "--apply")
	e.must(t, append(e.compose, "up", "-d")...)
	e.relay = netnsRelay(t, dockerGateway, m.url)
	dockerWaitHealthy(t, e)
	t.Logf("compose story up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("clients", func(t *testing.T) {
		for _, a := range dockerApps {
			t.Run(a.container, func(t *testing.T) {
				t.Parallel()
				dockerCheckApp(t, e, a, a.container)
			})
		}
	})
	t.Run("restart", func(t *testing.T) { dockerRestart(t, e) })
	t.Run("start race", func(t *testing.T) { dockerStartRace(t, e) })
	t.Run("second network", func(t *testing.T) { dockerSecondNetwork(t, e) })
	t.Run("name reused", func(t *testing.T) {
		web := dockerApps[0]
		e.must(t, "docker", "rm", "-f", web.container)
		e.must(t, "docker", "run", "-d", "--name", web.container, "--network", dockerNetwork, e.client)
		dockerCheckApp(t, e, web, web.container)
	})
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// dockerCheckImage checks the proxy's image: small, non-root, labelled,
// with a health check by the binary itself.
func dockerCheckImage(t *testing.T, e *dockerEnv, image string) {
	out := e.must(t, "docker", "image", "inspect", "-f", "{{.Size}} {{.Config.User}} {{json .Config.Healthcheck.Test}} {{json .Config.Labels}}", image)
	var size int64
	var user, check string
	if _, err := fmt.Sscan(out, &size, &user, &check); err != nil {
		t.Fatalf("docker image inspect: %v: %s", err, out)
	}
	t.Logf("image %s: %d bytes, user %s, healthcheck %s", image, size, user, check)
	if size > 20*1000*1000 || user != "65532:65532" || !strings.Contains(check, "health") {
		t.Errorf("image %s: %d bytes (max 20 MB), user %q (want 65532:65532), healthcheck %s", image, size, user, check)
	}
	for _, l := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision",
		"org.opencontainers.image.source", `"org.opencontainers.image.licenses":"BSD-3-Clause"`} {
		if !strings.Contains(out, l) {
			t.Errorf("image %s has no label %s: %s", image, l, out)
		}
	}
}

// dockerConfigDir writes the proxy's configuration and AWS files, readable
// by the image's uid 65532.
func dockerConfigDir(t *testing.T) string {
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  listen: [\"%s:8080\"]\n  docker_socket: /var/run/docker.sock\n", dockerGateway)
	b.WriteString("defaults:\n  region: us-east-1\n  imds: {hop_limit: 2}\n  credentials: {profile: moto}\ntenants:\n")
	for _, a := range dockerApps {
		if a.tenant == "" {
			continue
		}
		fmt.Fprintf(&b, "  - name: %s\n    sources: [%s]\n    instance: {instance_id: %s}\n", a.tenant, a.source, a.instanceID)
		fmt.Fprintf(&b, "    credentials: {role_arn: \"arn:aws:iam::%s:role/docker-%s\"}\n", dockerAccount, a.tenant)
	}
	files := map[string]string{
		"config.yaml":     b.String(),
		"aws/config":      "[profile moto]\nregion = us-east-1\n",
		"aws/credentials": fmt.Sprintf("[moto]\naws_access_key_id = %s\naws_secret_access_key = %s\n", dockerKeyID, dockerSecret),
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dockerWaitHealthy waits for the proxy's /healthz, its own health check,
// and for the web container to be served.
func dockerWaitHealthy(t *testing.T, e *dockerEnv) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + dockerAdminPort + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := e.run(append(e.compose, "logs", "--no-color", "imds-proxy")...)
			t.Fatalf("the proxy's /healthz did not answer 200 within 30s (%v):\n%s", err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := e.must(t, append(e.compose, "exec", "-T", "imds-proxy", "/imds-proxy", "health")...)
	t.Logf("imds-proxy health in the container: %s", strings.TrimSpace(out))
}

// dockerCurl fetches an IMDS path from inside a container: status, body.
func dockerCurl(t *testing.T, e *dockerEnv, container, path string) (string, string) {
	t.Helper()
	out, err := e.run("docker", "exec", container, "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", "http://169.254.169.254"+path)
	if err != nil {
		t.Errorf("curl %s in %s: %v\n%s", path, container, err, out)
		return "", ""
	}
	body := ""
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		body = out[:i]
	}
	return lastLine(out), body
}

// dockerCheckApp runs curl, the AWS CLI and boto3 in container as app.
func dockerCheckApp(t *testing.T, e *dockerEnv, a dockerApp, container string) {
	wantARN := fmt.Sprintf("arn:aws:sts::%s:assumed-role/docker-%s/%s", dockerAccount, a.tenant, a.instanceID)
	status, body := dockerCurl(t, e, container, "/latest/meta-data/instance-id")
	switch {
	case a.tenant == "" && status != "403":
		t.Errorf("curl instance-id in %s: %s %q, want 403", container, status, body)
	case a.tenant != "" && (status != "200" || body != a.instanceID):
		t.Errorf("curl instance-id in %s: %s %q, want 200 %q", container, status, body, a.instanceID)
	}
	// Nothing points the clients at IMDS or holds credentials: only STS
	// is moto (the CLI 2.9 predates AWS_ENDPOINT_URL, hence --endpoint-url).
	exec := []string{"docker", "exec", "-e", "PATH=/usr/bin:/bin", "-e", "HOME=/tmp", "-e", "AWS_DEFAULT_REGION=us-east-1",
		"-e", "AWS_ENDPOINT_URL=" + e.relay, container}
	begin := time.Now()
	out, err := e.run(append(exec, "aws", "sts", "get-caller-identity", "--endpoint-url", e.relay, "--output", "json")...)
	if a.tenant == "" {
		if err == nil || !strings.Contains(out, "Unable to locate credentials") {
			t.Errorf("aws sts get-caller-identity in %s = %v, %q; want \"Unable to locate credentials\"", container, err, out)
		}
	} else {
		var id struct{ Arn string }
		if err != nil || json.Unmarshal([]byte(out), &id) != nil || id.Arn != wantARN {
			t.Errorf("aws sts get-caller-identity in %s = %v, %q; want Arn %s", container, err, out, wantARN)
		}
		t.Logf("aws cli in %s: %s in %s", container, id.Arn, time.Since(begin).Round(time.Millisecond))
	}
	const script = `import boto3, json, os
s = boto3.Session()
c = s.get_credentials()
sts = s.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL"]) # boto3 1.26 predates AWS_ENDPOINT_URL
print(json.dumps({"method": None} if c is None else {"method": c.method, "arn": sts.get_caller_identity()["Arn"]}))
`
	out, err = e.run(append(exec, "python3", "-c", script)...)
	var got struct {
		Method *string
		ARN    string `json:"arn"`
	}
	if err != nil || json.Unmarshal([]byte(lastLine(out)), &got) != nil {
		t.Errorf("boto3 in %s: %v\n%s", container, err, out)
		return
	}
	switch {
	case a.tenant == "" && got.Method != nil:
		t.Errorf("boto3 in %s found credentials (%s, %s), want none", container, *got.Method, got.ARN)
	case a.tenant != "" && (got.Method == nil || *got.Method != "iam-role" || got.ARN != wantARN):
		t.Errorf("boto3 in %s = %s; want iam-role credentials of %s", container, out, wantARN)
	}
}

// dockerRestart restarts worker on a new address: a squatter, no tenant's,
// takes the old one and gets 403 at once, and the worker is served again
// within a second of its start.
func dockerRestart(t *testing.T, e *dockerEnv) {
	worker := dockerApps[1]
	old := e.addr(t, worker.container, dockerNetwork)
	e.must(t, "docker", "stop", "-t", "1", worker.container)
	e.must(t, "docker", "run", "-d", "--name", "imdse2e-squatter", "--network", dockerNetwork, "--ip", old, e.client)
	begin := time.Now()
	if status, _ := dockerCurl(t, e, "imdse2e-squatter", "/latest/meta-data/instance-id"); status != "403" {
		t.Errorf("the squatter of %s's old address %s: status %s, want 403", worker.container, old, status)
	}
	t.Logf("old address %s, now no tenant's: 403 in %s (docker exec included)", old, time.Since(begin).Round(time.Millisecond))

	invoked := time.Now()
	e.must(t, "docker", "start", worker.container)
	started := time.Now()
	path := "/latest/meta-data/iam/security-credentials/docker-worker"
	for {
		status, body := dockerCurl(t, e, worker.container, path)
		if status == "200" && strings.Contains(body, `"Code" : "Success"`) {
			break
		}
		if time.Since(started) > 5*time.Second {
			t.Fatalf("%s not served 5s after its start: %s %s", worker.container, status, body)
		}
	}
	now := e.addr(t, worker.container, dockerNetwork)
	first := time.Since(started)
	t.Logf("restarted %s (%s -> %s): first credentials %s after `docker start` returned (%s after it was run), docker exec included",
		worker.container, old, now, first.Round(time.Millisecond), time.Since(invoked).Round(time.Millisecond))
	if first > time.Second {
		t.Errorf("first credentials %s after the start, want within 1s", first)
	}
	if now == old {
		t.Errorf("restarted on its old address %s although the squatter holds it", old)
	}
}

// dockerStartRace starts a labelled container whose very first act is to
// ask for its instance id, before the proxy can have applied its start.
func dockerStartRace(t *testing.T, e *dockerEnv) {
	migrator := dockerApps[2]
	e.must(t, "docker", "run", "-d", "--name", "imdse2e-racer", "--network", dockerNetwork,
		"--label", "imds-proxy.tenant=migrator", e.client, "sh", "-c",
		`curl -s --max-time 5 -w " %{http_code} %{time_total}\n" http://169.254.169.254/latest/meta-data/instance-id; sleep infinity`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := strings.TrimSpace(e.must(t, "docker", "logs", "imdse2e-racer"))
		if out != "" {
			f := strings.Fields(out)
			if len(f) != 3 || f[0] != migrator.instanceID || f[1] != "200" {
				t.Errorf("the racer's first request: %q, want %s 200", out, migrator.instanceID)
			}
			t.Logf("the racer's first request, at its start: %s", out)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the racer printed nothing in 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dockerSecondNetwork connects migrator to a second network: both its
// addresses serve it (the proxy's /status.json lists them).
func dockerSecondNetwork(t *testing.T, e *dockerEnv) {
	migrator := dockerApps[2]
	e.must(t, "docker", "network", "create", "--subnet", "198.18.2.0/24",
		"-o", "com.docker.network.bridge.name=imdsdk1", dockerSecond)
	e.must(t, "docker", "network", "connect", dockerSecond, migrator.container)
	second := e.addr(t, migrator.container, dockerSecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := e.must(t, "curl", "-s", "http://127.0.0.1:"+dockerAdminPort+"/status.json")
		if strings.Contains(out, `"`+second+`/32"`) || strings.Contains(out, `"`+second+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second network's address %s is not served 5s after connect:\n%s", second, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, body := dockerCurl(t, e, migrator.container, "/latest/meta-data/instance-id"); status != "200" || body != migrator.instanceID {
		t.Errorf("%s on two networks: %s %q, want 200 %s", migrator.container, status, body, migrator.instanceID)
	}
	e.must(t, "docker", "network", "disconnect", dockerSecond, migrator.container)
}

// addr is container's IPv4 address on network.
func (e *dockerEnv) addr(t *testing.T, container, network string) string {
	t.Helper()
	out := strings.TrimSpace(e.must(t, "docker", "inspect", "-f",
		fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), container))
	if out == "" {
		t.Fatalf("%s has no address on %s", container, network)
	}
	return out
}

// cleanup removes every container and network the test makes, the client
// image excepted; running it twice is harmless.
func (e *dockerEnv) cleanup(t *testing.T) {
	_, _ = e.run(append([]string{"docker", "rm", "-f"}, dockerExtras...)...)
	if out, err := e.run(append(e.compose, "down", "--remove-orphans", "--timeout", "1")...); err != nil {
		t.Errorf("docker-compose down: %v\n%s", err, out)
	}
	_, _ = e.run("docker", "network", "rm", dockerSecond)
}

// run runs a command with docker-compose's environment under the budget.
func (e *dockerEnv) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = e.env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return string(out), err
}

func (e *dockerEnv) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}
