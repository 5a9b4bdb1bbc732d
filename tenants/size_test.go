package tenants

import (
	"testing"
	"unsafe"
)

// TestSizes pins the sizes of what every tenant holds, on 64-bit platforms:
// a Tenant over 512 bytes takes the next size class but one (objects over
// 512 bytes that hold pointers get a header), so a field added here costs
// far more than its own bytes at 10,000 tenants. Put a field few tenants
// set in TenantExtras or InstanceExtras instead.
func TestSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are pinned for 64-bit platforms")
	}
	for _, c := range []struct {
		name     string
		got, max uintptr
	}{
		{"Tenant", unsafe.Sizeof(Tenant{}), 512},
		{"Instance", unsafe.Sizeof(Instance{}), 256},
		{"Interface", unsafe.Sizeof(Interface{}), 352},
		{"IMDSOptions", unsafe.Sizeof(IMDSOptions{}), 16},
	} {
		if c.got > c.max {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.got, c.max)
		}
	}
}
