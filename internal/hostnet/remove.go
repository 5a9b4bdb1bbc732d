package hostnet

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// Remove deletes every rule, address and interface that carries setup's
// marks, whatever the mode that added it, writing each command to w before
// it runs. It needs no Options: the marks, not a configuration, say what is
// setup's, so a changed configuration cannot leave anything behind.
func Remove(r Runner, w io.Writer) error {
	var cmds []Command
	for _, bin := range []string{"iptables", "ip6tables"} {
		out, err := r.Output(Command{bin, "-w", "-t", "nat", "-S"})
		if errors.Is(err, exec.ErrNotFound) {
			continue // no rules of this family can exist
		}
		if err != nil {
			// No nat table for this family (IPv6 disabled, say): nothing of
			// ours can be in it.
			fmt.Fprintf(w, "# skipped: %v\n", err)
			continue
		}
		rules, err := taggedRules(bin, out)
		if err != nil {
			return err
		}
		for _, rule := range rules {
			cmds = append(cmds, rule.command("-D"))
		}
	}
	links, err := readLinks(r)
	if err != nil {
		return err
	}
	cmds = append(cmds, addressRemoval(links)...)
	for _, c := range cmds {
		fmt.Fprintln(w, c)
		if err := r.Run(c); err != nil {
			return err
		}
	}
	if len(cmds) == 0 {
		fmt.Fprintln(w, "# nothing to remove")
	}
	return nil
}
