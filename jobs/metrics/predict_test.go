package metrics

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/regulars/regulars/jobs/clv"
)

// predictGroups splits the groups over goroutines; every group must get the figures it gets
// alone, in its own place, whatever the split.
func TestPredictGroupsSplitGivesEachGroupItsOwnFigures(t *testing.T) {
	p := clv.BGNBDParams{R: 0.871, Alpha: 38.99, A: 0.620, B: 11.0} // the 1M benchmark's fit
	var groups []clv.Group
	for x := 0; x < 40; x++ {
		for age := x; age < x+150; age += 3 {
			groups = append(groups, clv.Group{Customer: clv.Customer{Frequency: x, Recency: float64(age / 2), T: float64(age + 1)}, Count: 1})
		}
	}
	if runtime.GOMAXPROCS(0) < 2 || len(groups) < 2000 {
		t.Logf("GOMAXPROCS %d, %d groups: the split may be one goroutine", runtime.GOMAXPROCS(0), len(groups))
	}
	got := predictGroups(p, groups, 365, 0.01)
	for i, g := range groups {
		want := predictGroups(p, []clv.Group{g}, 365, 0.01)[0]
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("group %d %+v: %v, want %v", i, g.Customer, got[i], want)
		}
	}
}
