package hostnet

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// iptablesRule is one rule of the nat table; bin is iptables or ip6tables.
type iptablesRule struct {
	bin, chain string
	spec       []string
}

func (r iptablesRule) command(op string) Command {
	return append(Command{r.bin, "-w", "-t", "nat", op, r.chain}, r.spec...)
}

// dnatRules are the rules of DNAT mode, IPv4 first.
func dnatRules(o Options) []iptablesRule {
	var rules []iptablesRule
	for _, v4 := range []bool{true, false} {
		to, ok := o.target(v4)
		if !ok {
			continue
		}
		bin, dst := "iptables", netip.PrefixFrom(endpoint4(), 32)
		if !v4 {
			bin, dst = "ip6tables", netip.PrefixFrom(endpoint6(), 128)
		}
		rule := func(chain string, match ...string) iptablesRule {
			spec := append(match, "-d", dst.String(), "-p", "tcp", "-m", "tcp", "--dport", "80",
				"-m", "comment", "--comment", Tag, "-j", "DNAT", "--to-destination", to.String())
			return iptablesRule{bin: bin, chain: chain, spec: spec}
		}
		for _, b := range o.Bridges {
			rules = append(rules, rule("PREROUTING", "-i", b))
		}
		for _, c := range o.CIDRs {
			if c.Addr().Is4() == v4 {
				rules = append(rules, rule("PREROUTING", "-s", c.String()))
			}
		}
		if o.Host {
			rules = append(rules, rule("OUTPUT"))
		}
	}
	rules = append(rules, ecsRules(o)...)
	return append(rules, podIdentityRules(o)...)
}

// ecsRules are DNAT mode's rules for the container credentials endpoints'
// addresses (IPv4 only, as ECS is), when ECSTo is set: 169.254.170.2, and
// 169.254.170.23 unless PodIdentityTo takes it.
func ecsRules(o Options) []iptablesRule {
	if !o.ECSTo.IsValid() {
		return nil
	}
	var rules []iptablesRule
	for _, dst := range ecsEndpoints() {
		if len(o.PodIdentityTo) > 0 && slices.Contains(podIdentityEndpoints(), dst) {
			continue
		}
		rules = append(rules, endpointRules(o, dst, o.ECSTo)...)
	}
	return rules
}

// podIdentityRules are DNAT mode's rules for EKS Pod Identity's addresses,
// each to the PodIdentityTo address of its IP version.
func podIdentityRules(o Options) []iptablesRule {
	var rules []iptablesRule
	for _, dst := range podIdentityEndpoints() {
		for _, to := range o.PodIdentityTo {
			if to.Addr().Is4() == dst.Is4() {
				rules = append(rules, endpointRules(o, dst, to)...)
			}
		}
	}
	return rules
}

// endpointRules redirect tcp to dst, port 80, to the address to, from the
// bridges, the blocks of dst's IP version and (Host) this host.
func endpointRules(o Options, dst netip.Addr, to netip.AddrPort) []iptablesRule {
	bin := "iptables"
	if !dst.Is4() {
		bin = "ip6tables"
	}
	rule := func(chain string, match ...string) iptablesRule {
		spec := append(match, "-d", netip.PrefixFrom(dst, dst.BitLen()).String(), "-p", "tcp", "-m", "tcp", "--dport", "80",
			"-m", "comment", "--comment", Tag, "-j", "DNAT", "--to-destination", to.String())
		return iptablesRule{bin: bin, chain: chain, spec: spec}
	}
	var rules []iptablesRule
	for _, b := range o.Bridges {
		rules = append(rules, rule("PREROUTING", "-i", b))
	}
	for _, c := range o.CIDRs {
		if c.Addr().Is4() == dst.Is4() {
			rules = append(rules, rule("PREROUTING", "-s", c.String()))
		}
	}
	if o.Host {
		rules = append(rules, rule("OUTPUT"))
	}
	return rules
}

func applyDNAT(o Options, r Runner, w io.Writer) error {
	n := 0
	for _, rule := range dnatRules(o) {
		// -C exits 1 when the rule is absent, and also when the chain or
		// table is: either way, insert it.
		if _, err := r.Output(rule.command("-C")); err == nil {
			fmt.Fprintf(w, "# in effect: %s\n", rule.command("-I"))
			continue
		}
		c := rule.command("-I")
		fmt.Fprintln(w, c)
		if err := r.Run(c); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		fmt.Fprintln(w, "# nothing to do")
	}
	return nil
}

// taggedRules reads `iptables -t nat -S` and returns the rules that carry
// Tag as their comment, as they were printed (so that -D matches them
// exactly).
func taggedRules(bin string, out []byte) ([]iptablesRule, error) {
	var rules []iptablesRule
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, Tag) {
			continue
		}
		words, err := splitIptablesLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s -S: %w", bin, err)
		}
		if !hasComment(words, Tag) || len(words) < 2 {
			continue
		}
		rules = append(rules, iptablesRule{bin: bin, chain: words[1], spec: words[2:]})
	}
	return rules, sc.Err()
}

func hasComment(words []string, tag string) bool {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "--comment" && words[i+1] == tag {
			return true
		}
	}
	return false
}

// splitIptablesLine splits a line of `iptables -S` into arguments: words
// separated by spaces, where a double-quoted word may hold spaces and
// backslash-escaped quotes and backslashes (iptables quotes comments so).
func splitIptablesLine(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, b.String())
				b.Reset()
			}
			inWord = false
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}
