package tenants

import (
	"fmt"
	"time"
)

// Event types: the lifecycle events an instance's metadata announces.
const (
	SpotInterruption        = "spot-interruption"        // spot/instance-action, spot/termination-time
	RebalanceRecommendation = "rebalance-recommendation" // events/recommendations/rebalance
	Maintenance             = "maintenance"              // events/maintenance/scheduled, then history
	AutoScaling             = "autoscaling"              // autoscaling/target-lifecycle-state
)

// SpotWarning is how long before a spot interruption its notice appears,
// as EC2 gives it.
const SpotWarning = 2 * time.Minute

// EventConfig is one entry of a tenant's events: list.
type EventConfig struct {
	Type   string   `yaml:"type" json:"type"`
	Action string   `yaml:"action" json:"action,omitempty"` // spot-interruption: terminate | stop | hibernate
	After  Duration `yaml:"after" json:"-"`                 // from the start, when the notice appears
	State  string   `yaml:"state" json:"state,omitempty"`   // autoscaling: the target lifecycle state
	Code   string   `yaml:"code" json:"code,omitempty"`     // maintenance: system-reboot, instance-retirement, ...
	// Starts is how long after its notice a maintenance window opens, and
	// Window how long it lasts.
	Starts Duration `yaml:"starts" json:"-"`
	Window Duration `yaml:"window" json:"-"`
}

// Event is a lifecycle event of a tenant, relative to when it is scheduled.
type Event struct {
	Type   string
	Action string        // spot-interruption
	After  time.Duration // when the notice appears
	State  string        // autoscaling
	Code   string        // maintenance
	Starts time.Duration // maintenance: NotBefore after the notice
	Window time.Duration // maintenance: NotAfter after NotBefore
}

var (
	spotActions      = map[string]bool{"terminate": true, "stop": true, "hibernate": true}
	maintenanceCodes = map[string]bool{"instance-reboot": true, "system-reboot": true, "system-maintenance": true,
		"instance-retirement": true, "instance-stop": true}
	lifecycleStates = map[string]bool{"InService": true, "Terminated": true, "Standby": true, "Detached": true,
		"Warmed:Stopped": true, "Warmed:Running": true, "Warmed:Hibernated": true, "Warmed:Terminated": true}
)

// NewEvent checks an event and fills in its defaults; the error names the
// field to fix.
func NewEvent(c EventConfig) (Event, error) {
	e := Event{Type: c.Type, Action: c.Action, After: time.Duration(c.After), State: c.State, Code: c.Code,
		Starts: time.Duration(c.Starts), Window: time.Duration(c.Window)}
	if e.After < 0 {
		return e, fmt.Errorf("after: %s is in the past", e.After)
	}
	switch e.Type {
	case SpotInterruption:
		if e.Action == "" {
			e.Action = "terminate"
		}
		if !spotActions[e.Action] {
			return e, fmt.Errorf("action: %q: use terminate, stop or hibernate", e.Action)
		}
	case RebalanceRecommendation:
	case Maintenance:
		if e.Code == "" {
			e.Code = "system-reboot"
		}
		if !maintenanceCodes[e.Code] {
			return e, fmt.Errorf("code: %q: use instance-reboot, system-reboot, system-maintenance, instance-retirement or instance-stop", e.Code)
		}
		if e.Starts == 0 {
			e.Starts = 10 * time.Minute
		}
		if e.Window == 0 {
			e.Window = 2 * time.Hour
		}
		if e.Starts < 0 || e.Window < 0 {
			return e, fmt.Errorf("starts and window must not be negative")
		}
	case AutoScaling:
		if !lifecycleStates[e.State] {
			return e, fmt.Errorf("state: %q: use InService, Standby, Detached, Terminated or Warmed:Stopped|Running|Hibernated|Terminated", e.State)
		}
	default:
		return e, fmt.Errorf("type: %q: use %s, %s, %s or %s", e.Type, SpotInterruption, RebalanceRecommendation, Maintenance, AutoScaling)
	}
	return e, nil
}

// buildEvents validates a tenant's events: list.
func buildEvents(cs []EventConfig, path []any, el errorList) []Event {
	var es []Event
	for i, c := range cs {
		e, err := NewEvent(c)
		if err != nil {
			el.add(at(path, i), "%v", err)
			continue
		}
		es = append(es, e)
	}
	return es
}

// InstanceEvent is a scheduled event EC2 reports for a live instance
// (ec2:DescribeInstanceStatus), at its absolute times: a mirror copies the
// instance's, and its tenant serves them as EC2 last reported them.
type InstanceEvent struct {
	ID          string // instance-event-...
	Code        string // system-reboot, instance-retirement, ...
	Description string // without EC2's "[Completed]" or "[Canceled]" prefix: State says it
	NotBefore   time.Time
	NotAfter    time.Time // zero: unsaid
	// NotBeforeDeadline is the latest the event may be rescheduled to
	// start; zero: unsaid (the event cannot be rescheduled).
	NotBeforeDeadline time.Time
	State             string // EventActive, EventCompleted or EventCanceled
}

// Maintenance event states, as events/maintenance/ shows them: active ones
// are scheduled, the others history.
const (
	EventActive    = "active"
	EventCompleted = "completed"
	EventCanceled  = "canceled"
)
