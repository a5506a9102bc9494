package config

import (
	"fmt"
	"reflect"
	"sync"
)

// Clone returns a deep copy of c: no slice, map or pointer of the copy is
// shared with c, so either may be modified freely.
//
// The copy is made by walking the values with reflection rather than by a
// JSON round trip: a configuration of 1,000 services with 10 real servers
// each is copied about ten times faster, and the write path copies the
// current configuration on every change. The model is plain data (structs,
// slices, maps, pointers, strings, numbers, booleans, times); a kind that
// is not is a programming error and panics, as the JSON round trip did.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := &Config{}
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(c).Elem())
	return out
}

// deepCopy sets dst, which is settable and of src's type and holds its
// zero value, to a deep copy of src.
func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		dst.Set(src)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		deepCopy(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		n := src.Len()
		s := reflect.MakeSlice(src.Type(), n, n)
		if plain(src.Type().Elem().Kind()) {
			reflect.Copy(s, src)
		} else {
			for i := range n {
				deepCopy(s.Index(i), src.Index(i))
			}
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			deepCopy(k, it.Key())
			v := reflect.New(src.Type().Elem()).Elem()
			deepCopy(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Struct:
		dst.Set(src) // every plain field at once
		for _, i := range referenceFields(src.Type()) {
			f := dst.Field(i)
			f.SetZero()
			deepCopy(f, src.Field(i))
		}
	default:
		panic(fmt.Sprintf("config: clone: cannot copy a %s", src.Type()))
	}
}

// plain reports whether values of kind k hold no references.
func plain(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	}
	return false
}

// refFields caches referenceFields by struct type.
var refFields sync.Map // reflect.Type → []int

// referenceFields returns the indexes of the fields of struct type t that
// hold, at any depth, a pointer, slice or map that a copy must not share.
func referenceFields(t reflect.Type) []int {
	if v, ok := refFields.Load(t); ok {
		return v.([]int)
	}
	var out []int
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			panic(fmt.Sprintf("config: clone: unexported field %s.%s", t, f.Name))
		}
		if !plain(f.Type.Kind()) && !(f.Type.Kind() == reflect.Struct && !hasReferences(f.Type)) {
			out = append(out, i)
		}
	}
	refFields.Store(t, out)
	return out
}

// hasReferences reports whether a struct type holds, at any depth, a
// pointer, slice or map that a copy must not share. Structs without any
// (time.Time's location pointer aside, which is immutable and shared by
// every copy of a time) are copied whole.
func hasReferences(t reflect.Type) bool {
	if t.PkgPath() == "time" && t.Name() == "Time" {
		return false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		switch k := f.Type.Kind(); {
		case plain(k):
		case k == reflect.Struct:
			if hasReferences(f.Type) {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// CloneService returns a deep copy of v (with its real servers and
// SubVSs), sharing nothing with it, for a holder that compares it with
// later configurations by SameService.
func CloneService(v *VirtualService) *VirtualService {
	if v == nil {
		return nil
	}
	out := &VirtualService{}
	deepCopy(reflect.ValueOf(out).Elem(), reflect.ValueOf(v).Elem())
	return out
}

// sameValue reports whether a and b, of one type, hold equal data: a
// sufficient condition for encoding identically. It is reflect.DeepEqual
// without the bookkeeping of cyclic pointers, which the model never has,
// and so several times cheaper; for what it does not know (a kind the
// model does not use, an unexported field, a NaN) it reports false, which
// only costs its callers their shortcut.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() && b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !sameValue(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if !allExported(a.Type()) {
			return false
		}
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return false
}

// exported caches allExported by struct type.
var exported sync.Map // reflect.Type → bool

// allExported reports whether every field of struct type t is exported.
func allExported(t reflect.Type) bool {
	if v, ok := exported.Load(t); ok {
		return v.(bool)
	}
	all := true
	for i := range t.NumField() {
		all = all && t.Field(i).IsExported()
	}
	exported.Store(t, all)
	return all
}
