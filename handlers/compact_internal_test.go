package handlers

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSpliceRoundTrip: whichever way a body is held against a common one
// (not at all, whole, spliced once or twice), a catalogue serves it whole.
func TestSpliceRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdef0123456789"[rnd.IntN(16)]
		}
		return b
	}
	common := bytes.Join([][]byte{[]byte(`{"id" : "i-`), word(17), []byte(`", "type" : "t3.micro", "pending" : "2026-11-30T20:00:00Z", "ip" : "172.31.`), word(5), []byte(`", "region" : "eu-west-1"}`)}, nil)
	cases := map[string][]byte{
		"equal":      common,
		"empty":      nil,
		"unrelated":  word(90),
		"short":      []byte("x"),
		"one hole":   append(append(bytes.Clone(common[:40]), "different"...), common[50:]...),
		"two holes":  bytes.Join([][]byte{common[:12], word(17), common[29 : len(common)-33], word(7), common[len(common)-28:]}, nil),
		"longer":     append(bytes.Clone(common), common...),
		"prefix":     common[:len(common)/2],
		"suffix":     common[len(common)/3:],
		"large":      append(word(20000), common...),
		"repetitive": bytes.Repeat([]byte("ab"), 80),
	}
	for name, body := range cases {
		o := spliceInto(body, common)
		if data := o.append(nil); len(data) != o.size() {
			t.Errorf("%s: %d bytes held, size says %d", name, len(data), o.size())
		}
		// Slot 1 between two slots holding the common body, and two
		// holding bytes of their own around them: the ends of each are
		// found past the ones before.
		c := &catalogue{layout: &layout{slots: []slot{{common: common}, {common: common}, {common: common}, {common: common}, {common: common}}}}
		whole := splice{body: []byte("own")}
		same := spliceInto(common, common)
		owns := []splice{whole, same, o, same, whole}
		size := 0
		for _, s := range owns {
			size += s.size()
		}
		c.pack(owns, size)
		for i, want := range [][]byte{[]byte("own"), common, body, common, []byte("own")} {
			e := c.latest(uint16(i))
			if got := bytes.Join([][]byte{e.head, e.body, e.run, e.body2, e.tail}, nil); !bytes.Equal(got, want) {
				t.Errorf("%s: slot %d served %q, want %q", name, i, got, want)
			}
		}
		e := c.latest(2)
		if got := bytes.Join([][]byte{e.head, e.body, e.run, e.body2, e.tail}, nil); !bytes.Equal(got, body) {
			t.Errorf("%s (flag %x): served %q, want %q", name, o.flag>>30, got, body)
		}
	}
	if o := spliceInto(cases["two holes"], common); o.flag != splicedTwice || o.size() > 17+7+twiceHeader {
		t.Errorf("two holes: flag %x, %d bytes held", o.flag>>30, o.size())
	}
}

// TestPackedEnds: in a layout of many slots, some holding bytes of their
// own and most the common body, each slot serves its own body; the ends of
// the owning slots are found past every owning slot before, in the
// bitmap's whole words and in its last bytes.
func TestPackedEnds(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 63, 64, 65, 150, 1000} {
		l := &layout{slots: make([]slot, n)}
		owns := make([]splice, n)
		want := make([][]byte, n)
		size := 0
		for i := range l.slots {
			l.slots[i].common = fmt.Appendf(nil, "common %d", i)
			want[i] = l.slots[i].common
			if rnd.IntN(4) == 0 {
				want[i] = fmt.Appendf(nil, "own %d", i)
			}
			owns[i] = spliceInto(want[i], l.slots[i].common)
			size += owns[i].size()
		}
		c := &catalogue{layout: l}
		c.pack(owns, size)
		for i := range l.slots {
			e := c.latest(uint16(i))
			if got := bytes.Join([][]byte{e.head, e.body, e.run, e.body2, e.tail}, nil); !bytes.Equal(got, want[i]) {
				t.Errorf("%d slots: slot %d served %q, want %q", n, i, got, want[i])
			}
		}
	}
}
