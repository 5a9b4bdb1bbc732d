package handlers

import (
	"bytes"
	"encoding/binary"
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
		data := make([]byte, 2, 2+o.size())
		data = o.append(data)
		if len(data)-2 != o.size() {
			t.Errorf("%s: %d bytes held, size says %d", name, len(data)-2, o.size())
		}
		end := uint32(len(data)-2) | o.flag
		binary.LittleEndian.PutUint16(data, uint16(end&endOffset|end>>16))
		c := &catalogue{layout: &layout{slots: []slot{{common: common}}}, data: data}
		if len(data)-2 >= narrowLimit {
			continue // the end would not fit narrow; large is checked for size only
		}
		e := c.latest(0)
		if got := bytes.Join([][]byte{e.head, e.body, e.run, e.body2, e.tail}, nil); !bytes.Equal(got, body) {
			t.Errorf("%s (flag %x): served %q, want %q", name, o.flag>>30, got, body)
		}
	}
	if o := spliceInto(cases["two holes"], common); o.flag != splicedTwice || o.size() > 17+7+twiceHeader {
		t.Errorf("two holes: flag %x, %d bytes held", o.flag>>30, o.size())
	}
}
