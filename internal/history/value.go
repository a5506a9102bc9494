package history

import (
	"math"
	"strconv"
)

// A point's values are kept as 16-bit unsigned floats: a float32 without
// its sign bit and its 15 lowest mantissa bits (8 exponent bits, 8 mantissa
// bits). Every value a series holds is a rate or a count, never negative;
// the relative error is at most 2^-9 (0.2 %), integers up to 512 are exact,
// and the range is float32's. code16Absent marks a point where the object
// did not exist (JSON null).
type code16 = uint16

// code16Absent is the code of "no data" (it decodes to NaN).
const code16Absent code16 = 0xFFFF

// maxEncodable is the largest value encode keeps (larger ones are clamped
// to it), short of the codes that decode to infinity and NaN.
var maxEncodable = math.Float32frombits(0x7F7F_8000)

// encode returns v's code; a negative or NaN v is 0.
func encode(v float64) code16 {
	if !(v > 0) {
		return 0
	}
	f := float32(v)
	if f > maxEncodable || math.IsInf(float64(f), 1) {
		f = maxEncodable
	}
	bits := math.Float32bits(f) + 1<<14 // round to nearest
	if bits > 0x7F7F_8000 {
		bits = 0x7F7F_8000
	}
	return code16(bits >> 15)
}

// decode returns the value of c; NaN for code16Absent.
func decode(c code16) float32 {
	if c == code16Absent {
		return float32(math.NaN())
	}
	return math.Float32frombits(uint32(c) << 15)
}

// Column is one series of values aligned with a Doc's T; NaN is a point
// where the object did not exist, written as null in JSON.
type Column []float32

// MarshalJSON writes the column as a JSON array of numbers in their
// shortest form, with null for absent points.
func (c Column) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(c)*6)
	b = append(b, '[')
	for i, v := range c {
		if i > 0 {
			b = append(b, ',')
		}
		if v != v { // NaN
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']'), nil
}
