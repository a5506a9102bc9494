package kempapi

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestFollowVSID drives port following over both versions (names in any
// case, numbers as strings and numbers), checks showvs and the model,
// the refusals naming the parameter, and the effect on real traffic: a
// client stuck to a real server on one port reaches the same server on
// the port that follows it.
func TestFollowVSID(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	vip, rs1, rs2 := "127.0.94.1", "127.0.94.11", "127.0.94.12"
	port := testkit.FreePort(t, rs1)
	for _, addr := range []string{rs1, rs2} {
		backend(t, addr, port, addr, false)
	}
	ports := testkit.FreePorts(t, vip, 3)
	p80, p443, pSub := ports[0], ports[1], ports[2]
	id := func(x *xnode) int {
		n, err := strconv.Atoi(x.data().val("Index"))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	svc := func(p int) string { return fmt.Sprintf("vs=%s&port=%d&prot=tcp", vip, p) }
	a := id(e.ok1("addvs", svc(p80)+"&VStype=http&Persist=src&PersistTimeout=600&CheckType=tcp"))
	b := id(e.ok1("addvs", svc(p443)+"&VStype=http&Persist=src&PersistTimeout=600&CheckType=tcp"))
	for _, p := range []int{p80, p443} {
		for _, rs := range []string{rs1, rs2} {
			e.ok1("addrs", fmt.Sprintf("%s&rs=%s&rsport=%d", svc(p), rs, port))
		}
	}
	follows := func(want int) {
		t.Helper()
		if got := e.ctl.Current().Config.VirtualServiceByID(b).FollowVSID; got != want {
			t.Fatalf("followVsId %d, want %d", got, want)
		}
		if got := e.ok1("showvs", fmt.Sprintf("vs=%d", b)).data().val("FollowVSID"); got != strconv.Itoa(want) {
			t.Fatalf("showvs FollowVSID %s, want %d", got, want)
		}
	}
	for _, tc := range []struct {
		name string
		set  func(v int)
	}{
		{"v1 mixed case", func(v int) { e.ok1("modvs", fmt.Sprintf("vs=%d&FollowVSID=%d", b, v)) }},
		{"v1 lower case", func(v int) { e.ok1("modvs", fmt.Sprintf("vs=%d&followvsid=%d", b, v)) }},
		{"v2 number", func(v int) { e.ok2("modvs", map[string]any{"vs": b, "FollowVSID": v}) }},
		{"v2 string", func(v int) { e.ok2("modvs", map[string]any{"vs": strconv.Itoa(b), "followvsid": strconv.Itoa(v)}) }},
	} {
		tc.set(a)
		follows(a)
		tc.set(0)
		follows(0)
	}
	for _, tc := range []struct{ query, want string }{
		{fmt.Sprintf("vs=%d&FollowVSID=%d", b, b), "FollowVSID: must be the id of another top-level service"},
		{fmt.Sprintf("vs=%d&FollowVSID=999", b), "FollowVSID: must be the id of another top-level service, got 999"},
		{fmt.Sprintf("vs=%d&FollowVSID=-1", b), "FollowVSID: Invalid value"},
		{fmt.Sprintf("vs=%d&FollowVSID=x", b), "FollowVSID: Invalid value"},
	} {
		mustErrXML(t, e.v1(auth{}, "modvs", tc.query, nil), http.StatusUnprocessableEntity, tc.want)
		follows(0)
	}
	parent := id(e.ok1("addvs", svc(pSub)+"&VStype=http"))
	sub := e.ok1("modvs", fmt.Sprintf("vs=%d&createsubvs=", parent)).data()
	subID := sub.all("SubVS")
	if len(subID) == 0 {
		t.Fatalf("createsubvs answered no SubVS: %+v", sub)
	}
	subIndex := subID[len(subID)-1].val("VSIndex")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs="+subIndex+"&FollowVSID="+strconv.Itoa(b), nil), http.StatusUnprocessableEntity,
		"FollowVSID: a SubVS cannot follow")
	e.ok1("delvs", fmt.Sprintf("vs=%d", parent))

	// Traffic: the client is stuck to rs2 on the first port (rs1 is
	// disabled there for its first request); the second port follows the
	// first, so every request there reaches rs2 as well, though rs1 is
	// enabled on both.
	e.ok1("modvs", fmt.Sprintf("vs=%d&FollowVSID=%d", b, a))
	e.ok1("modrs", fmt.Sprintf("%s&rs=%s&rsport=%d&enable=0", svc(p80), rs1, port))
	only(t, "first port", answers(t, fmt.Sprintf("http://%s/", net.JoinHostPort(vip, strconv.Itoa(p80))), 3), rs2)
	e.ok1("modrs", fmt.Sprintf("%s&rs=%s&rsport=%d&enable=1", svc(p80), rs1, port))
	only(t, "first port after rs1 is back", answers(t, fmt.Sprintf("http://%s/", net.JoinHostPort(vip, strconv.Itoa(p80))), 6), rs2)
	only(t, "following port", answers(t, fmt.Sprintf("http://%s/", net.JoinHostPort(vip, strconv.Itoa(p443))), 10), rs2)
}
