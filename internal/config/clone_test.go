package config

import (
	"reflect"
	"testing"
)

// sameSample is a service with real servers, a SubVS and a health check
// with a header and codes, for the SameService tests.
func sameSample() *VirtualService {
	return &VirtualService{ID: 1, Address: "127.0.0.2", Port: 80, Protocol: "tcp", Enabled: Bool(true),
		HealthCheck: HealthCheck{Type: "http", Headers: map[string]string{"X-A": "b"}, Codes: []int{200}},
		RealServers: []RealServer{{ID: 1, Address: "127.0.0.3", Port: 9000, Weight: 1000}},
		SubVSs:      []VirtualService{{ID: 2, NickName: "sub", RealServers: []RealServer{{ID: 2, Address: "127.0.0.4", Port: 9001}}}}}
}

func TestSameService(t *testing.T) {
	tests := []struct {
		name   string
		change func(v *VirtualService)
		same   bool
	}{
		{"unchanged", func(*VirtualService) {}, true},
		{"port", func(v *VirtualService) { v.Port = 81 }, false},
		{"enabled pointer to an equal value", func(v *VirtualService) { v.Enabled = Bool(true) }, true},
		{"disabled", func(v *VirtualService) { v.Enabled = Bool(false) }, false},
		{"real server weight", func(v *VirtualService) { v.RealServers[0].Weight = 2000 }, false},
		{"real server added", func(v *VirtualService) { v.RealServers = append(v.RealServers, RealServer{ID: 3}) }, false},
		{"health check header", func(v *VirtualService) { v.HealthCheck.Headers["X-A"] = "c" }, false},
		{"health check code", func(v *VirtualService) { v.HealthCheck.Codes[0] = 204 }, false},
		{"SubVS real server", func(v *VirtualService) { v.SubVSs[0].RealServers[0].Port = 9002 }, false},
		{"SubVS removed", func(v *VirtualService) { v.SubVSs = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sameSample()
			b := CloneService(a)
			tt.change(b)
			if got := SameService(a, b); got != tt.same {
				t.Errorf("SameService = %v, want %v", got, tt.same)
			}
		})
	}
}

// TestSameServiceSeesEveryField changes each field of a service, and each
// field of its struct-valued fields, in turn: SameService must see every
// one, or a changed service would keep its compiled state or health plan.
func TestSameServiceSeesEveryField(t *testing.T) {
	typ := reflect.TypeFor[VirtualService]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		paths := [][]int{{i}}
		if ft := f.Type; ft.Kind() == reflect.Struct {
			paths = nil
			for j := range ft.NumField() {
				paths = append(paths, []int{i, j})
			}
		}
		for _, path := range paths {
			name := typ.FieldByIndex(path).Name
			if len(path) > 1 {
				name = f.Name + "." + name
			}
			t.Run(name, func(t *testing.T) {
				a := sameSample()
				b := CloneService(a)
				if !SameService(a, b) {
					t.Fatal("a service differs from its copy")
				}
				perturb(t, reflect.ValueOf(b).Elem().FieldByIndex(path))
				if SameService(a, b) {
					t.Errorf("a change of %s is not seen", name)
				}
			})
		}
	}
}

// perturb changes v, a settable value, to a different one.
func perturb(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		} else {
			v.Set(reflect.Zero(v.Type()))
		}
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		k := reflect.New(v.Type().Key()).Elem()
		perturb(t, k)
		v.SetMapIndex(k, reflect.Zero(v.Type().Elem()))
	case reflect.Struct:
		if v.NumField() == 0 {
			t.Skip("a struct without fields holds no data")
		}
		perturb(t, v.Field(0))
	default:
		t.Fatalf("kind %s: teach perturb about it", v.Kind())
	}
}
