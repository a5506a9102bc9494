package balance

// newWeightedLeastConn returns the "wlc" picker: the server with the
// lowest load relative to its weight. The load compared is
// (active+1)/weight, the load the server would have after taking this
// connection: with plain active/weight every idle server ties at zero and
// the weights would not matter until servers are busy. With
// (active+1)/weight, connections that stay open are shared in exact
// proportion to the weights (weights 3 and 1 hold 30 and 10 of 40
// connections). Comparisons are exact integer cross multiplications
// (weights ≤ 65535 times a slow-start fraction ≤ 1024, and counts far
// below 2^40, stay inside int64). Ties, limits, availability and the
// tournament tree for large pools are as for lc (lc.go).
func newWeightedLeastConn(c *core, _ Options) (Picker, error) { return newLC(c, true), nil }
