package awssource_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/imds-proxy/imds-proxy/tenants"
)

func at(s string) time.Time {
	t, err := time.Parse("2 Jan 2006 15:04:05 MST", s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// liveEvents is what DescribeInstanceStatus says of an instance with a
// reboot ahead, a retirement done and a maintenance canceled, listed out of
// order; and of another instance, which the mirror must not take.
func liveEvents() []ec2types.InstanceStatus {
	return []ec2types.InstanceStatus{
		{InstanceId: aws.String("i-0aaaaaaaaaaaaaaa0"), Events: []ec2types.InstanceStatusEvent{{Code: ec2types.EventCodeInstanceStop,
			InstanceEventId: aws.String("instance-event-0ffffffffffffffff"), NotBefore: aws.Time(at("1 Jan 2019 00:00:00 GMT"))}}},
		{InstanceId: aws.String("i-0123456789abcdef0"), Events: []ec2types.InstanceStatusEvent{
			{Code: ec2types.EventCodeSystemReboot, Description: aws.String("scheduled reboot"),
				InstanceEventId: aws.String("instance-event-0d59937288b749b32"),
				NotBefore:       aws.Time(at("21 Jan 2019 09:00:43 GMT")), NotAfter: aws.Time(at("21 Jan 2019 09:17:23 GMT")),
				NotBeforeDeadline: aws.Time(at("31 Jan 2019 09:00:43 GMT"))},
			{Code: ec2types.EventCodeInstanceRetirement, Description: aws.String("[Completed] The instance is running on degraded hardware"),
				InstanceEventId: aws.String("instance-event-0a1b2c3d4e5f60718"), NotBefore: aws.Time(at("14 Jan 2019 08:00:00 GMT"))},
			{Code: ec2types.EventCodeSystemMaintenance, Description: aws.String("[Canceled] scheduled maintenance"),
				InstanceEventId: aws.String("instance-event-0123456789abcdef0"),
				NotBefore:       aws.Time(at("7 Jan 2019 10:00:00 GMT")), NotAfter: aws.Time(at("7 Jan 2019 12:00:00 GMT"))},
		}},
	}
}

// TestMirrorScheduledEvents: every refresh asks DescribeInstanceStatus for
// the instance, stopped or not, and maps its events exactly: the
// description's [Completed] and [Canceled] become the state, in NotBefore
// order.
func TestMirrorScheduledEvents(t *testing.T) {
	f := newFakeEC2(liveInstance())
	f.statuses = liveEvents()
	src := mirrorOf(f, &tenants.MirrorSpec{InstanceID: "i-0123456789abcdef0", Region: "eu-west-1"})
	m, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []tenants.InstanceEvent{
		{ID: "instance-event-0123456789abcdef0", Code: "system-maintenance", Description: "scheduled maintenance",
			NotBefore: at("7 Jan 2019 10:00:00 GMT"), NotAfter: at("7 Jan 2019 12:00:00 GMT"), State: tenants.EventCanceled},
		{ID: "instance-event-0a1b2c3d4e5f60718", Code: "instance-retirement", Description: "The instance is running on degraded hardware",
			NotBefore: at("14 Jan 2019 08:00:00 GMT"), State: tenants.EventCompleted},
		{ID: "instance-event-0d59937288b749b32", Code: "system-reboot", Description: "scheduled reboot",
			NotBefore: at("21 Jan 2019 09:00:43 GMT"), NotAfter: at("21 Jan 2019 09:17:23 GMT"),
			NotBeforeDeadline: at("31 Jan 2019 09:00:43 GMT"), State: tenants.EventActive},
	}
	if !reflect.DeepEqual(m.Events, want) {
		t.Errorf("events:\n got %+v\nwant %+v", m.Events, want)
	}
	if len(m.Warnings) > 0 {
		t.Errorf("warnings: %q", m.Warnings)
	}
	if len(f.statusIn) != 1 || !reflect.DeepEqual(f.statusIn[0].InstanceIds, []string{"i-0123456789abcdef0"}) || !aws.ToBool(f.statusIn[0].IncludeAllInstances) {
		t.Fatalf("DescribeInstanceStatus calls %+v, want one for the instance with IncludeAllInstances", f.statusIn)
	}

	// The served tenant carries them.
	if got := mirroredTenant(t).WithMirror(m).InstanceEvents(); !reflect.DeepEqual(got, want) {
		t.Errorf("WithMirror's events %+v, want the copy's", got)
	}

	// A refresh that may no longer ask keeps the last events, with a
	// warning naming the permission; the copy is still good.
	f.err["DescribeInstanceStatus"] = apiError("UnauthorizedOperation", "denied")
	m2, err := src.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("a refresh without ec2:DescribeInstanceStatus failed: %v", err)
	}
	if !reflect.DeepEqual(m2.Events, want) || m2.Instance.ID != "i-0123456789abcdef0" {
		t.Errorf("after a denied refresh: events %+v, instance %q; want the last events and the copy", m2.Events, m2.Instance.ID)
	}
	if all := strings.Join(m2.Warnings, "\n"); !strings.Contains(all, "ec2:DescribeInstanceStatus") {
		t.Errorf("warnings do not name ec2:DescribeInstanceStatus:\n%s", all)
	}

	// Events gone at EC2 are gone from the copy.
	delete(f.err, "DescribeInstanceStatus")
	f.statuses = nil
	if m3, err := src.Retrieve(context.Background()); err != nil || m3.Events != nil {
		t.Errorf("with no events: %+v, %v", m3.Events, err)
	}
}
