package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// RapidResetProcess runs the rapid-reset attack in a process of its own
// (`bin attack rapid-reset`, bin being the bench/cmd/reliability binary),
// so that the attacker and a legitimate client measured at the same time
// are scheduled by the kernel as two programs, not by one Go runtime.
func RapidResetProcess(ctx context.Context, bin, addr string, conns int, d time.Duration) (RapidResetResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "attack", "rapid-reset", "-addr", addr, "-conns", strconv.Itoa(conns),
		"-duration", d.String()).Output()
	var res RapidResetResult
	if err != nil {
		return res, fmt.Errorf("rapid-reset attacker: %w", err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("rapid-reset attacker: %w: %q", err, out)
	}
	return res, nil
}
