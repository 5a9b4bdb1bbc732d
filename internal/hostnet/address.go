package hostnet

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// link is the part of `ip -d -j addr show` that Address mode reads. Without
// -d (details), ip leaves out the alias.
type link struct {
	Name     string   `json:"ifname"`
	Alias    string   `json:"ifalias"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Metric    int    `json:"metric"`
	} `json:"addr_info"`
}

func ipAddrShow() Command { return Command{"ip", "-d", "-j", "addr", "show"} }

func parseIPAddr(out []byte) ([]link, error) {
	var links []link
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("ip -d -j addr show: %w", err)
	}
	return links, nil
}

// readLinks asks the host for its links.
func readLinks(r Runner) ([]link, error) {
	out, err := r.Output(ipAddrShow())
	if err != nil {
		return nil, err
	}
	return parseIPAddr(out)
}

// addressPlan is what Address mode runs on a host with these links (todo)
// and which of its commands are in effect already (present).
func addressPlan(o Options, links []link) (todo, present []Command) {
	var l *link
	for i := range links {
		if links[i].Name == o.Interface {
			l = &links[i]
		}
	}
	dev := []string{"dev", o.Interface}
	create := []Command{
		{"ip", "link", "add", o.Interface, "type", "dummy"},
		append(Command{"ip", "link", "set"}, append(dev, "alias", Tag)...),
		append(Command{"ip", "link", "set"}, append(dev, "up")...),
	}
	switch {
	case l == nil:
		todo = append(todo, create...)
	case l.Alias == Tag && !slices.Contains(l.Flags, "UP"):
		// Ours, and so ours to bring up; someone else's stays as it is.
		todo = append(todo, create[2])
	}
	for _, p := range o.endpoints() {
		c := Command{"ip", "addr", "add", p.String(), "dev", o.Interface, "metric", strconv.Itoa(AddrMetric)}
		if l != nil && l.has(p) {
			present = append(present, c)
		} else {
			todo = append(todo, c)
		}
	}
	return todo, present
}

func (l *link) has(p netip.Prefix) bool {
	for _, a := range l.AddrInfo {
		if ad, err := netip.ParseAddr(a.Local); err == nil && ad == p.Addr() && a.PrefixLen == p.Bits() {
			return true
		}
	}
	return false
}

// isEndpoint reports whether a is one of the addresses Address mode adds.
func isEndpoint(a netip.Addr) bool {
	return a == endpoint4() || a == endpoint6() || slices.Contains(ecsEndpoints(), a) || slices.Contains(podIdentityEndpoints(), a)
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func applyAddresses(o Options, r Runner, w io.Writer) error {
	links, err := readLinks(r)
	if err != nil {
		return err
	}
	todo, present := addressPlan(o, links)
	if len(todo) == 0 || todo[0][2] != "add" {
		fmt.Fprintf(w, "# interface %s exists: used as it is\n", o.Interface)
	}
	for _, c := range present {
		fmt.Fprintf(w, "# in effect: %s\n", c)
	}
	for _, c := range todo {
		fmt.Fprintln(w, c)
		if err := r.Run(c); err != nil {
			if c[1] == "link" && c[2] == "add" {
				return fmt.Errorf("%w\n(no dummy interfaces on this kernel? `modprobe dummy`, or use --interface lo)", err)
			}
			return err
		}
	}
	if len(todo) == 0 {
		fmt.Fprintln(w, "# nothing to do")
	}
	return nil
}

// addressRemoval deletes the interfaces setup created (their addresses go
// with them) and the addresses it added to other interfaces.
func addressRemoval(links []link) []Command {
	var cmds []Command
	for _, l := range links {
		if l.Alias == Tag {
			cmds = append(cmds, Command{"ip", "link", "del", "dev", l.Name})
			continue
		}
		for _, a := range l.AddrInfo {
			ad, err := netip.ParseAddr(a.Local)
			if err != nil || a.Metric != AddrMetric || !isEndpoint(ad) {
				continue
			}
			p := netip.PrefixFrom(ad, a.PrefixLen)
			cmds = append(cmds, Command{"ip", "addr", "del", p.String(), "dev", l.Name})
		}
	}
	return cmds
}
