// Package kubernetes owns the Kubernetes adapter: the pods of one node and
// the cluster's namespaces, each read with client-go's list-and-watch
// reflector through a REST client that knows only the few core/v1 fields
// the proxy needs, and the TokenReviews of the Pod Identity endpoint. It
// declares its own narrow types instead of importing k8s.io/api, whose
// generated code alone would add several megabytes to the binary.
package kubernetes

import (
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Pod is the part of a core/v1 Pod the proxy reads; the API server's JSON
// decodes into it, unknown fields ignored.
type Pod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PodSpec   `json:"spec,omitempty"`
	Status            PodStatus `json:"status,omitempty"`
}

// PodSpec is the part of a pod's spec the proxy reads.
type PodSpec struct {
	NodeName           string `json:"nodeName,omitempty"`
	Hostname           string `json:"hostname,omitempty"`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	HostNetwork        bool   `json:"hostNetwork,omitempty"`
}

// PodStatus is the part of a pod's status the proxy reads.
type PodStatus struct {
	Phase  string  `json:"phase,omitempty"`
	PodIP  string  `json:"podIP,omitempty"`
	PodIPs []PodIP `json:"podIPs,omitempty"`
}

// PodIP is one of a pod's addresses.
type PodIP struct {
	IP string `json:"ip"`
}

// PodList is a page of pods.
type PodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pod `json:"items"`
}

// DeepCopyObject copies the pod, as runtime.Object requires.
func (p *Pod) DeepCopyObject() runtime.Object {
	c := *p
	c.ObjectMeta = *p.ObjectMeta.DeepCopy()
	c.Status.PodIPs = append([]PodIP(nil), p.Status.PodIPs...)
	return &c
}

// DeepCopyObject copies the list.
func (l *PodList) DeepCopyObject() runtime.Object {
	c := *l
	c.ListMeta = *l.ListMeta.DeepCopy()
	c.Items = make([]Pod, len(l.Items))
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopyObject().(*Pod)
	}
	return &c
}

// Addrs are the pod's addresses; none for a pod on the host's network (its
// address is the node's, which no pod may claim) or one that has finished.
func (p *Pod) Addrs() []netip.Addr {
	if p.Spec.HostNetwork || p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed" {
		return nil
	}
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			for _, b := range out {
				if a == b {
					return
				}
			}
			out = append(out, a)
		}
	}
	add(p.Status.PodIP)
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	return out
}

// coreV1 is the group-version of pods.
func coreV1() schema.GroupVersion { return schema.GroupVersion{Version: "v1"} }

// Namespace is the part of a core/v1 Namespace the proxy reads: its
// metadata (annotations).
type Namespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
}

// NamespaceList is a page of namespaces.
type NamespaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Namespace `json:"items"`
}

// DeepCopyObject copies the namespace.
func (n *Namespace) DeepCopyObject() runtime.Object {
	c := *n
	c.ObjectMeta = *n.ObjectMeta.DeepCopy()
	return &c
}

// DeepCopyObject copies the list.
func (l *NamespaceList) DeepCopyObject() runtime.Object {
	c := *l
	c.ListMeta = *l.ListMeta.DeepCopy()
	c.Items = make([]Namespace, len(l.Items))
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopyObject().(*Namespace)
	}
	return &c
}

// newScheme knows only pods and namespaces (and the meta types of list and
// watch options), so that decoding never reaches other API groups.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypes(coreV1(), &Pod{}, &PodList{}, &Namespace{}, &NamespaceList{})
	metav1.AddToGroupVersion(s, coreV1())
	return s
}
