//go:build race

package persist

// raceEnabled is true under the race detector, which makes the big tests
// use fewer clients.
const raceEnabled = true
