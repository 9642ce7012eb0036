package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is wrapped by every error Decode returns.
var ErrCorrupt = errors.New("aggregate: corrupt state")

// encVersion is the first byte of every encoded state.
const encVersion = 1

// tag is the second byte of every encoded state: the type of the state.
type tag byte

const (
	tagCount tag = iota + 1
	tagSum
	tagAvg
	tagMin
	tagMax
	tagStddev
	tagFirst
	tagLast
	tagSketch
	tagDistinct
)

func appendHeader(dst []byte, t tag) []byte { return append(dst, encVersion, byte(t)) }

// readHeader checks the version and tag and returns the rest of src.
func readHeader(src []byte, t tag) ([]byte, error) {
	if len(src) < 2 {
		return nil, corrupt("%d bytes, need a 2-byte header", len(src))
	}
	if src[0] != encVersion {
		return nil, corrupt("version %d, want %d", src[0], encVersion)
	}
	if tag(src[1]) != t {
		return nil, corrupt("state type %d, want %d", src[1], t)
	}
	return src[2:], nil
}

// readFixed checks the header and that exactly n bytes follow it.
func readFixed(src []byte, t tag, n int) ([]byte, error) {
	b, err := readHeader(src, t)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, corrupt("%d bytes after the header, want %d", len(b), n)
	}
	return b, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func appendU64(dst []byte, x uint64) []byte { return binary.LittleEndian.AppendUint64(dst, x) }

func appendF64(dst []byte, f float64) []byte { return appendU64(dst, math.Float64bits(f)) }

func u64At(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func f64At(b []byte, i int) float64 { return math.Float64frombits(u64At(b, i)) }

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func boolAt(b []byte, i int) (bool, error) {
	switch b[i] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, corrupt("boolean byte %d", b[i])
}

// mismatch panics: merging states of different functions is a programming
// error, not a data error.
func mismatch(s, o State) {
	panic(fmt.Sprintf("aggregate: cannot merge %T into %T", o, s))
}
