package kubernetes

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestNotifyingStore: every change the reflector makes is told, and what
// is kept has no managedFields.
func TestNotifyingStore(t *testing.T) {
	changes := 0
	s := notifyingStore{Store: cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc), changed: func() { changes++ }}
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	ns := func(name string) *Namespace {
		return &Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, ManagedFields: managed}}
	}
	steps := []struct {
		name string
		do   func() error
		keys int
	}{
		{"replace", func() error { return s.Replace([]any{ns("a"), ns("b")}, "1") }, 2},
		{"add", func() error { return s.Add(ns("c")) }, 3},
		{"update", func() error { return s.Update(ns("c")) }, 3},
		{"delete", func() error { return s.Delete(ns("a")) }, 2},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if changes != i+1 {
			t.Errorf("%s: %d changes told, want %d", st.name, changes, i+1)
		}
		if n := len(s.List()); n != st.keys {
			t.Errorf("%s: %d kept, want %d", st.name, n, st.keys)
		}
		for _, o := range s.List() {
			if m := o.(*Namespace).ManagedFields; m != nil {
				t.Errorf("%s: %s kept managedFields %v", st.name, o.(*Namespace).Name, m)
			}
		}
	}
}
