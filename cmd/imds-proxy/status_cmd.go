package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
)

// adminEnv names the admin listener for `imds-proxy status` when --admin
// does not.
const adminEnv = "IMDS_PROXY_ADMIN"

// statusArgs are status's flags.
type statusArgs struct {
	admin   string
	raw     bool
	timeout time.Duration
}

// statusFlagSet defines status's flags into a; def is --admin's default.
func statusFlagSet(a *statusArgs, def string) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy status", flag.ContinueOnError)
	fs.StringVar(&a.admin, "admin", def, "admin listener `address` of the running proxy (env "+adminEnv+")")
	fs.BoolVar(&a.raw, "json", false, "print /status.json as the server sent it")
	fs.DurationVar(&a.timeout, "timeout", 3*time.Second, "give up on the admin listener after this `duration`")
	fs.Usage = func() { usageOf(fs, "") }
	return fs
}

// runStatus asks a running proxy's admin listener for /status.json and
// prints it as a table, so an operator sees at a glance which tenant lacks
// what.
func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	def := adminDefault(getenv)
	a := &statusArgs{}
	fs := statusFlagSet(a, def)
	if err := parseArgs(fs, args, stdout); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status: unexpected argument %q", fs.Arg(0))
	}
	admin, raw, timeout := &a.admin, &a.raw, &a.timeout
	body, err := adminClient{base: adminURL(*admin), timeout: *timeout, cmd: "status"}.do(ctx, http.MethodGet, "/status.json", nil)
	if err != nil {
		return err
	}
	if *raw {
		_, err := stdout.Write(body)
		return err
	}
	var st handlers.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("status: %s/status.json is not an imds-proxy status: %w", adminURL(*admin), err)
	}
	return writeStatus(stdout, *admin, st)
}

// adminURL accepts the admin address as the listener logs it (host:port)
// or as a URL.
func adminURL(admin string) string {
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	return strings.TrimRight(admin, "/")
}

// writeStatus prints a summary line, one row per tenant, then every
// problem in full: a table cell holds only the start of an error.
func writeStatus(w io.Writer, admin string, st handlers.Status) error {
	ready := 0
	for _, t := range st.Tenants {
		if t.Ready {
			ready++
		}
	}
	fmt.Fprintf(w, "%s: %d tenants, %d ready (as of %s)\n", admin, len(st.Tenants), ready, st.Generated.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSOURCES\tINSTANCE\tZONE\tROLE\tIMDS\tCREDENTIALS\tMIRROR\tTOKENS\tREADY\tEVENTS")
	for _, t := range st.Tenants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, dash(strings.Join(t.Sources, ",")),
			dash(t.InstanceID), dash(t.AvailabilityZone), dash(t.Role), t.IMDS,
			credentialsCell(t.Credentials, st.Generated), mirrorCell(t.Mirror), t.Tokens, yesNo(t.Ready), eventsCell(t.Events))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var problems []string
	for _, t := range st.Tenants {
		for _, p := range t.Problems {
			problems = append(problems, fmt.Sprintf("  %s: %s: %s", t.Name, p.What, p.Reason))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nnot ready:\n%s\n", strings.Join(problems, "\n"))
	}
	return nil
}

// cellWidth is where an error is cut in a cell; the full text follows the
// table.
const cellWidth = 40

// credentialsCell says how long the served credentials last, measured on
// the server's clock (now: when it generated the status) so that the
// client's clock does not matter.
func credentialsCell(c *handlers.CredentialState, now time.Time) string {
	switch {
	case c == nil:
		return "-"
	case !c.Valid && c.LastError != "":
		return "error: " + cut(c.LastError, cellWidth)
	case !c.Valid:
		return "not fetched yet"
	}
	left := c.Expiration.Sub(now).Round(time.Second)
	s := "expires in " + left.String()
	if left < 0 {
		s = "expired " + (-left).String() + " ago"
	}
	if c.LastError != "" {
		s += " (refresh failing)"
	}
	return s
}

// eventsCell lists a tenant's events, last in the row because it is the
// one cell of no fixed width.
func eventsCell(es []handlers.EventView) string {
	var out []string
	for _, e := range es {
		out = append(out, e.String())
	}
	return dash(strings.Join(out, "; "))
}

func mirrorCell(m *handlers.MirrorState) string {
	switch {
	case m == nil:
		return "-"
	case m.Mirrored && m.LastError != "":
		return dash(m.Instance) + " (refresh failing)"
	case m.Mirrored:
		return dash(m.Instance)
	case m.LastError != "":
		return "error: " + cut(m.LastError, cellWidth)
	}
	return "not yet"
}

// cut shortens s to n runes, on one line.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
