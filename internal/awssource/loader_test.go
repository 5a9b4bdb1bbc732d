package awssource_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/imds-proxy/imds-proxy/internal/awssource"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// fakeAWS answers STS's GetSessionToken and GetCallerIdentity and EC2's
// DescribeAvailabilityZones over HTTP, and counts the connections open to
// it.
func fakeAWS(t *testing.T) (url string, open *atomic.Int64) {
	open = new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		switch r.Form.Get("Action") {
		case "GetSessionToken":
			fmt.Fprintf(w, `<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetSessionTokenResult><Credentials>`+
				`<AccessKeyId>ASIAFAKESESSION0001</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>`+
				`<Expiration>%s</Expiration></Credentials></GetSessionTokenResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetSessionTokenResponse>`,
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		case "GetCallerIdentity":
			fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
				`<Arn>arn:aws:iam::111122223333:user/dev</Arn><UserId>AIDAFAKE</UserId><Account>111122223333</Account>`+
				`</GetCallerIdentityResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
		case "DescribeAvailabilityZones":
			fmt.Fprint(w, `<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>3</requestId>`+
				`<availabilityZoneInfo/></DescribeAvailabilityZonesResponse>`)
		default:
			http.Error(w, "unexpected action "+r.Form.Get("Action"), http.StatusBadRequest)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, open
}

// awsFiles points the SDK at a config and credentials file of the test's
// own and at url for every service.
func loaderFiles(t *testing.T, url, credentials string) string {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(config, []byte("[profile keys]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte(credentials), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_ENDPOINT_URL": url,
		"AWS_PROFILE": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""} {
		t.Setenv(k, v)
	}
	return creds
}

// TestLoaderReusesConnections: profiles are read afresh at every refresh,
// but over one connection pool, where loading a config per refresh used to
// leave a transport, and its idle connection, behind each time.
func TestLoaderReusesConnections(t *testing.T) {
	tests := []struct {
		name     string
		caBundle bool // AWS_CA_BUNDLE set: the SDK copies the client at every load
	}{
		{"system roots", false},
		{"custom CA bundle", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, open := fakeAWS(t)
			credsFile := loaderFiles(t, url, "[keys]\naws_access_key_id = AKIAFAKELONGTERM01\naws_secret_access_key = long-term-secret\n")
			t.Setenv("AWS_CA_BUNDLE", "")
			if tc.caBundle {
				t.Setenv("AWS_CA_BUNDLE", caBundle(t))
			}
			loader := awssource.NewLoader(awssource.Profiles{})
			spec := tenants.CredentialSpec{Profile: "keys", Duration: time.Hour, RefreshBefore: 15 * time.Minute}
			ctx := context.Background()
			for i := range 10 {
				// A source of its own each time, so that it asks
				// GetCallerIdentity each time too.
				src := &awssource.ProfileCredentials{Spec: spec, Load: loader.Profile}
				c, err := src.Retrieve(ctx)
				if err != nil {
					t.Fatalf("refresh %d: %v", i, err)
				}
				if c.AccessKeyID != "ASIAFAKESESSION0001" || c.AccountID != "111122223333" {
					t.Fatalf("refresh %d: %v of account %q", i, c, c.AccountID)
				}
				api, err := loader.EC2(ctx, "keys", "")
				if err != nil {
					t.Fatal(err)
				}
				if api.Region != "eu-west-1" {
					t.Fatalf("region %q, want the profile's eu-west-1", api.Region)
				}
				if _, err := api.KeysZones.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{}); err != nil {
					t.Fatal(err)
				}
			}
			// The SDK closes some connections after a call (it closes the
			// request body early); what must not happen is a pool per load,
			// each keeping its idle connection (90s in the SDK's transport).
			if n := open.Load(); n > 2 {
				t.Fatalf("%d connections left open by 30 calls in 20 profile loads, want the one pool's", n)
			}

			// Still read afresh: new keys in the file are used at the next load.
			if err := os.WriteFile(credsFile, []byte("[keys]\naws_access_key_id = AKIAFAKELONGTERM02\naws_secret_access_key = new-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := loader.Profile(ctx, "keys")
			if err != nil {
				t.Fatal(err)
			}
			if c, err := p.Credentials.Retrieve(ctx); err != nil || c.AccessKeyID != "AKIAFAKELONGTERM02" {
				t.Fatalf("after editing the credentials file: %v, %v; want the new keys", c.AccessKeyID, err)
			}
		})
	}
}

// caBundle writes a PEM file of one (unused) certificate.
func caBundle(t *testing.T) string {
	tls := httptest.NewTLSServer(http.NotFoundHandler())
	cert := tls.Certificate()
	tls.Close()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
