package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imds-proxy/imds-proxy/handlers"
	"github.com/imds-proxy/imds-proxy/tenants"
)

// eventArgs are event's flags: one flag set for every event type, list and
// clear, so that --help, the completions and the manual show them all;
// eventFlags says which a type takes.
type eventArgs struct {
	admin, tenant               string
	action, state, code         string
	in, starts, window, timeout time.Duration
}

// eventTypes are the types `imds-proxy event TYPE` schedules, in the order
// the usage names them.
func eventTypes() []string {
	return []string{tenants.SpotInterruption, tenants.RebalanceRecommendation, tenants.Maintenance, tenants.AutoScaling}
}

// eventFlags are the flags a type takes besides --admin, --tenant, --in and
// --timeout.
func eventFlags(typ string) []string {
	switch typ {
	case tenants.SpotInterruption:
		return []string{"action"}
	case tenants.Maintenance:
		return []string{"code", "starts", "window"}
	case tenants.AutoScaling:
		return []string{"state"}
	}
	return nil
}

const eventUsage = `
TYPE is spot-interruption [--action terminate|stop|hibernate], rebalance-recommendation,
maintenance [--code C --starts D --window D] or autoscaling --state S; its notice appears
in the tenant's metadata --in from now (at once without it). "event list" prints the
pending and active events of --tenant, or of every tenant; "event clear" forgets those of
--tenant. docs/operations.md ("Lifecycle events") shows what each type serves.
`

// eventFlagSet defines event's flags into a; def is --admin's default.
func eventFlagSet(a *eventArgs, def string) *flag.FlagSet {
	fs := flag.NewFlagSet("imds-proxy event", flag.ContinueOnError)
	fs.StringVar(&a.admin, "admin", def, "admin listener `address` of the running proxy (env "+adminEnv+")")
	fs.StringVar(&a.tenant, "tenant", "", "the `tenant` whose events these are (list: every tenant without it)")
	fs.DurationVar(&a.in, "in", 0, "the notice appears this `duration` from now (default: at once)")
	fs.StringVar(&a.action, "action", "", "spot-interruption: the `action`, terminate, stop or hibernate (default terminate)")
	fs.StringVar(&a.code, "code", "", "maintenance: the event `code`, instance-reboot, system-reboot, system-maintenance, instance-retirement or instance-stop (default system-reboot)")
	fs.DurationVar(&a.starts, "starts", 0, "maintenance: the window opens this `duration` after the notice (default 10m)")
	fs.DurationVar(&a.window, "window", 0, "maintenance: the window lasts this `duration` (default 2h)")
	fs.StringVar(&a.state, "state", "", "autoscaling: the target lifecycle `state` (InService, Standby, Detached, Terminated, Warmed:*)")
	fs.DurationVar(&a.timeout, "timeout", 5*time.Second, "give up on the admin listener after this `duration`")
	fs.Usage = func() { usageOf(fs, eventUsage) }
	return fs
}

// runEvent schedules, lists or clears a tenant's lifecycle events on a
// running proxy's admin listener (/tenants/{name}/events).
func runEvent(ctx context.Context, args []string, getenv func(string) string, stdout, _ io.Writer) error {
	def := adminDefault(getenv)
	a := &eventArgs{}
	fs := eventFlagSet(a, def)
	// The type may come before or after the flags: flag stops at the
	// first argument, so what follows it is parsed again.
	if err := parseArgs(fs, args, stdout); err != nil {
		return helpShown(err)
	}
	if fs.NArg() == 0 {
		return usagef("event: want a type (%s), list or clear", strings.Join(eventTypes(), ", "))
	}
	sub := fs.Arg(0)
	if err := parseArgs(fs, fs.Args()[1:], stdout); err != nil {
		return helpShown(err)
	}
	if fs.NArg() > 0 {
		return usagef("event %s: unexpected argument %q", sub, fs.Arg(0))
	}
	allowed := []string{"admin", "tenant", "timeout"}
	switch {
	case sub == "list" || sub == "clear":
	case slices.Contains(eventTypes(), sub):
		allowed = append(append(allowed, "in"), eventFlags(sub)...)
	default:
		return usagef("event: unknown type %q: want %s, list or clear", sub, strings.Join(eventTypes(), ", "))
	}
	var stray []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(allowed, f.Name) {
			stray = append(stray, "--"+f.Name)
		}
	})
	if len(stray) > 0 {
		return usagef("event %s: %s does not apply (imds-proxy help event)", sub, strings.Join(stray, ", "))
	}
	if a.tenant == "" && sub != "list" {
		return usagef("event %s: --tenant is required: the tenant whose events these are", sub)
	}
	c := adminClient{base: adminURL(a.admin), timeout: a.timeout, cmd: "event " + sub}
	switch sub {
	case "list":
		return listEvents(ctx, c, a.tenant, stdout)
	case "clear":
		if err := c.call(ctx, http.MethodDelete, eventsPath(a.tenant), nil, new(handlers.EventsReply)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cleared the events of %s\n", a.tenant)
		return nil
	}
	return scheduleEvent(ctx, c, sub, a, stdout)
}

// helpShown turns --help into success.
func helpShown(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func eventsPath(tenant string) string {
	return "/tenants/" + url.PathEscape(tenant) + "/events"
}

// scheduleEvent checks the event as the proxy will, so that a typo is a
// usage error, then posts it and prints the tenant's events.
func scheduleEvent(ctx context.Context, c adminClient, typ string, a *eventArgs, stdout io.Writer) error {
	cfg := tenants.EventConfig{Type: typ, Action: a.action, State: a.state, Code: a.code,
		After: tenants.Duration(a.in), Starts: tenants.Duration(a.starts), Window: tenants.Duration(a.window)}
	if _, err := tenants.NewEvent(cfg); err != nil {
		flagName := strings.NewReplacer("after:", "--in:", "action:", "--action:", "state:", "--state:", "code:", "--code:").Replace(err.Error())
		return usagef("event %s: %s", typ, flagName)
	}
	req := handlers.EventRequest{Type: typ, Action: a.action, State: a.state, Code: a.code,
		In: durationArg(a.in), Starts: durationArg(a.starts), Window: durationArg(a.window)}
	var reply handlers.EventsReply
	if err := c.call(ctx, http.MethodPost, eventsPath(a.tenant), req, &reply); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scheduled %s for %s; its events:\n", typ, a.tenant)
	return writeEvents(stdout, []handlers.EventsReply{reply})
}

// durationArg is d as the admin listener reads it; "" for none.
func durationArg(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// listEvents prints the events of tenant, or, without one, of every tenant
// as /status.json lists them.
func listEvents(ctx context.Context, c adminClient, tenant string, stdout io.Writer) error {
	if tenant != "" {
		var reply handlers.EventsReply
		if err := c.call(ctx, http.MethodGet, eventsPath(tenant), nil, &reply); err != nil {
			return err
		}
		return writeEvents(stdout, []handlers.EventsReply{reply})
	}
	var st handlers.Status
	if err := c.call(ctx, http.MethodGet, "/status.json", nil, &st); err != nil {
		return err
	}
	var all []handlers.EventsReply
	for _, t := range st.Tenants {
		all = append(all, handlers.EventsReply{Tenant: t.Name, Events: t.Events})
	}
	return writeEvents(stdout, all)
}

// writeEvents prints one row per event; a line saying so when there are
// none.
func writeEvents(w io.Writer, replies []handlers.EventsReply) error {
	n := 0
	for _, r := range replies {
		n += len(r.Events)
	}
	if n == 0 {
		fmt.Fprintln(w, "no pending or active events")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTYPE\tDETAIL\tNOTICE\tTIME\tSTATE\tEVENT ID")
	for _, r := range replies {
		for _, e := range r.Events {
			state := "pending"
			if e.Active {
				state = "active"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Tenant, e.Type, dash(e.Detail()),
				e.Notice.UTC().Format(time.RFC3339), e.Time.UTC().Format(time.RFC3339), state, dash(e.ID))
		}
	}
	return tw.Flush()
}
