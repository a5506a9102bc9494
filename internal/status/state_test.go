package status

import (
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/health"
)

// TestHealthWords checks that the words of the health monitor and of the
// real servers' health, which the data plane copies into VS.Health,
// SubVS.Health, RS.Status and RS.Health, are States.
func TestHealthWords(t *testing.T) {
	for _, tc := range []struct {
		word string
		want State
	}{
		{health.StatusUp, Up},
		{health.StatusDown, Down},
		{health.StatusSorry, Sorry},
		{health.StatusDisabled, Disabled},
		{health.StatusUnchecked, Unchecked},
		{health.StatusDraining, Draining},
		{health.StatusUnknown, Unknown},
		{backend.HealthUp.String(), Up},
		{backend.HealthDown.String(), Down},
		{backend.HealthUnknown.String(), Unknown},
	} {
		if State(tc.word) != tc.want {
			t.Errorf("%q is not the State %q", tc.word, tc.want)
		}
	}
}
