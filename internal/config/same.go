package config

import (
	"reflect"
	"sync"
	"unsafe"
)

// SameService reports whether a and b configure a virtual service (with
// its real servers and SubVSs) identically: the same data in every field.
// It may report false for equal services in cases it does not decide
// (see sameValue), never true for different ones. It is the one test of
// "unchanged" for a service: the data plane reuses a compiled service and
// the health monitor a service's plan when it reports true.
func SameService(a, b *VirtualService) bool {
	return equalFor[VirtualService]()(unsafe.Pointer(a), unsafe.Pointer(b))
}

// SameOptions is SameService for the global options.
func SameOptions(a, b *Options) bool {
	return equalFor[Options]()(unsafe.Pointer(a), unsafe.Pointer(b))
}

// eqFunc reports whether the values of one type at a and b hold equal
// data, as sameValue does.
type eqFunc func(a, b unsafe.Pointer) bool

// eqFuncs caches compileEq by type; eqMu serialises compiling.
var (
	eqFuncs sync.Map // reflect.Type → eqFunc
	eqMu    sync.Mutex
)

// equalFor returns the comparison of values of type T. It is sameValue
// compiled once per type into functions that read the fields at their
// offsets: the data plane and the health monitor compare every service of
// a configuration on every change, and the reflective walk cost several
// microseconds a service.
func equalFor[T any]() eqFunc {
	t := reflect.TypeFor[T]()
	if f, ok := eqFuncs.Load(t); ok {
		return f.(eqFunc)
	}
	eqMu.Lock()
	defer eqMu.Unlock()
	if f, ok := eqFuncs.Load(t); ok {
		return f.(eqFunc)
	}
	f := compileEq(t, map[reflect.Type]*eqFunc{})
	eqFuncs.Store(t, f)
	return f
}

// sliceHeader is the layout of a slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// compileEq builds the comparison of type t. building holds the types
// being compiled, for recursive types (a service's SubVSs are services).
func compileEq(t reflect.Type, building map[reflect.Type]*eqFunc) eqFunc {
	if slot, ok := building[t]; ok {
		if *slot != nil {
			return *slot
		}
		// t refers to itself: look the function up when it is called.
		return func(a, b unsafe.Pointer) bool { return (*slot)(a, b) }
	}
	slot := new(eqFunc)
	building[t] = slot
	*slot = compileKind(t, building)
	return *slot
}

func compileKind(t reflect.Type, building map[reflect.Type]*eqFunc) eqFunc {
	switch t.Kind() {
	case reflect.Bool:
		return eqOf[bool]
	case reflect.Int:
		return eqOf[int]
	case reflect.Int8:
		return eqOf[int8]
	case reflect.Int16:
		return eqOf[int16]
	case reflect.Int32:
		return eqOf[int32]
	case reflect.Int64:
		return eqOf[int64]
	case reflect.Uint:
		return eqOf[uint]
	case reflect.Uint8:
		return eqOf[uint8]
	case reflect.Uint16:
		return eqOf[uint16]
	case reflect.Uint32:
		return eqOf[uint32]
	case reflect.Uint64:
		return eqOf[uint64]
	case reflect.Uintptr:
		return eqOf[uintptr]
	case reflect.Float32:
		return eqOf[float32]
	case reflect.Float64:
		return eqOf[float64]
	case reflect.String:
		return eqOf[string]
	case reflect.Pointer:
		elem := compileEq(t.Elem(), building)
		return func(a, b unsafe.Pointer) bool {
			pa, pb := *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b)
			if pa == nil || pb == nil {
				return pa == nil && pb == nil
			}
			return elem(pa, pb)
		}
	case reflect.Slice:
		elem, size := compileEq(t.Elem(), building), t.Elem().Size()
		return func(a, b unsafe.Pointer) bool {
			sa, sb := (*sliceHeader)(a), (*sliceHeader)(b)
			if (sa.data == nil) != (sb.data == nil) || sa.len != sb.len {
				return false
			}
			for i := range uintptr(sa.len) {
				if !elem(unsafe.Add(sa.data, i*size), unsafe.Add(sb.data, i*size)) {
					return false
				}
			}
			return true
		}
	case reflect.Map:
		// Maps (a check's headers) are rare and small: compared reflectively.
		return func(a, b unsafe.Pointer) bool {
			return sameValue(reflect.NewAt(t, a).Elem(), reflect.NewAt(t, b).Elem())
		}
	case reflect.Struct:
		if !allExported(t) {
			return func(unsafe.Pointer, unsafe.Pointer) bool { return false }
		}
		// The most common kinds of field are compared in the loop, the
		// others by their function.
		type field struct {
			off  uintptr
			kind reflect.Kind
			eq   eqFunc
		}
		fields := make([]field, t.NumField())
		for i := range fields {
			f := t.Field(i)
			fields[i] = field{off: f.Offset, kind: f.Type.Kind(), eq: compileEq(f.Type, building)}
		}
		return func(a, b unsafe.Pointer) bool {
			for _, f := range fields {
				pa, pb := unsafe.Add(a, f.off), unsafe.Add(b, f.off)
				switch f.kind {
				case reflect.Bool:
					if *(*bool)(pa) != *(*bool)(pb) {
						return false
					}
				case reflect.Int:
					if *(*int)(pa) != *(*int)(pb) {
						return false
					}
				case reflect.String:
					if *(*string)(pa) != *(*string)(pb) {
						return false
					}
				default:
					if !f.eq(pa, pb) {
						return false
					}
				}
			}
			return true
		}
	}
	// A kind the model does not use: not decided, so not the same.
	return func(unsafe.Pointer, unsafe.Pointer) bool { return false }
}

// eqOf compares two values of a comparable plain type (a NaN differs from
// itself, as in sameValue).
func eqOf[T comparable](a, b unsafe.Pointer) bool { return *(*T)(a) == *(*T)(b) }
