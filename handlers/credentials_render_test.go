package handlers

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/imds-proxy/imds-proxy/tenants"
)

// TestContainerDocumentFromIMDS: the container endpoint's document, made
// from the values the IMDS document holds when first asked, is the one
// rendered from the credentials themselves, whatever their characters.
func TestContainerDocumentFromIMDS(t *testing.T) {
	expiry := time.Date(2026, 11, 30, 21, 0, 0, 0, time.FixedZone("X", 3600))
	for _, c := range []tenants.Credentials{
		{AccessKeyID: "ASIAEXAMPLE000000001", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "IQoJb3JpZ2luX2VjE//////////wEaCXVzLWVhc3QtMSJIMEYCIQ==",
			Expiration: expiry, AccountID: "111122223333", Retrieved: expiry.Add(-time.Hour)},
		{AccessKeyID: `AKIA"quoted"`, SecretAccessKey: `back\slash <tag> & é`, SessionToken: "line\nbreak\ttab\u2028", Expiration: expiry},
	} {
		want := document(
			str("AccessKeyId", c.AccessKeyID),
			str("SecretAccessKey", c.SecretAccessKey),
			str("Token", c.SessionToken),
			str("Expiration", c.Expiration.UTC().Format(time.RFC3339)),
		)
		if c.AccountID != "" {
			want = document(
				str("AccessKeyId", c.AccessKeyID),
				str("SecretAccessKey", c.SecretAccessKey),
				str("Token", c.SessionToken),
				str("Expiration", c.Expiration.UTC().Format(time.RFC3339)),
				str("AccountId", c.AccountID),
			)
		}
		d := RenderCredentials(c)
		var wg sync.WaitGroup
		for range 4 { // first asked by several requests at once
			wg.Go(func() {
				if got := d.ContainerDocument(); !bytes.Equal(got, want) {
					t.Errorf("container document\n%s\nwant\n%s", got, want)
				}
			})
		}
		wg.Wait()
	}
}
