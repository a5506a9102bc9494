package templates

import (
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// TestFromServiceRules: the rules a service and its SubVSs use come with
// the template, renamed with the VIP; rules it does not use stay behind;
// instantiated at another address, the copy validates beside the original.
func TestFromServiceRules(t *testing.T) {
	c := config.Default()
	c.ContentRules = []config.ContentRule{
		{Name: "to-a", Match: "url", MatchType: "prefix", Pattern: "/a"},
		{Name: "unused", Match: "url", Pattern: "x"},
		{Name: "hdr", Type: "addHeader", Header: "X-App", Replacement: "1"},
	}
	c.VirtualServices = []config.VirtualService{{Address: "192.0.2.1", Port: 80, Protocol: "tcp", Type: "http", NickName: "app",
		HTTP: &config.HTTPSettings{RequestRules: []string{"hdr"}},
		SubVSs: []config.VirtualService{
			{Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"to-a"}}, RealServers: []config.RealServer{{Address: "10.0.0.1", Port: 80}}},
			{Type: "http", RealServers: []config.RealServer{{Address: "10.0.0.2", Port: 80}}},
		}}}
	c.SetDefaults()
	c.AssignIDs(nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := FromVirtualService(&c.VirtualServices[0], "app", ""); err == nil {
		t.Fatal("FromVirtualService without the rules: want an error")
	}
	tp, err := FromService(c, &c.VirtualServices[0], "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.ContentRules) != 2 || tp.ContentRules[0]["name"] != "to-a-${vip}" || tp.ContentRules[1]["name"] != "hdr-${vip}" {
		t.Fatalf("rules: %v", tp.ContentRules)
	}
	inst, err := tp.Instantiate(map[string]any{"vip": "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	inst.AddTo(c)
	c.SetDefaults()
	c.AssignIDs(nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	copyVS := c.VirtualServices[1]
	if copyVS.HTTP.RequestRules[0] != "hdr-192.0.2.2" || copyVS.SubVSs[0].HTTP.SelectRules[0] != "to-a-192.0.2.2" {
		t.Fatalf("copy: %+v %+v", copyVS.HTTP, copyVS.SubVSs[0].HTTP)
	}
}
