package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"syscall"
)

var (
	// ErrDamaged is wrapped by the errors of a damaged store file: Open
	// refusing it (see DamageError), and a read or write that met a
	// damaged page or record while serving. Such errors name what could
	// not be read (a revision's number, a user's name) but not the file's
	// path, so they may be shown to API clients.
	ErrDamaged = errors.New("the store file is damaged")
	// ErrNoSpace is wrapped by the errors of writes that failed because
	// the disk holding the store is full (ENOSPC) or the user's quota is
	// used up (EDQUOT). Nothing was written. Its message holds no path.
	ErrNoSpace = errors.New("no space left on the disk that holds the store")
)

// panicError is a panic of bbolt (or a fault on its memory map) turned into
// an error: bbolt panics on pages that are not what it expects.
type panicError struct {
	value any
}

func (e *panicError) Error() string {
	return fmt.Sprintf("%v: %v", ErrDamaged, e.value)
}

func (e *panicError) Unwrap() error { return ErrDamaged }

// catch runs fn and turns a panic, or a memory fault while reading bbolt's
// memory map (a page beyond the end of a file that shrank), into an error
// wrapping ErrDamaged. fn must not leave locks held when it panics (bbolt's
// View and Update roll their transaction back).
func catch(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = &panicError{value: r}
		}
	}()
	return fn()
}

// noSpaceError is a write error caused by a full disk: its message names
// the condition but not the file's path.
type noSpaceError struct {
	err error // the error of the write, with the path
}

func (e *noSpaceError) Error() string {
	reason := "no space left on device"
	if errors.Is(e.err, syscall.EDQUOT) || strings.Contains(e.err.Error(), syscall.EDQUOT.Error()) {
		reason = "disk quota exceeded"
	}
	return fmt.Sprintf("%v (%s): the change was not saved", ErrNoSpace, reason)
}

func (e *noSpaceError) Unwrap() []error { return []error{ErrNoSpace, e.err} }

// classifyWriteError wraps a write error caused by a full disk in a
// noSpaceError. bbolt flattens some errors into text, so the text is
// looked at too.
func classifyWriteError(err error) error {
	if err == nil {
		return nil
	}
	var ns *noSpaceError
	if errors.As(err, &ns) {
		return err
	}
	msg := err.Error()
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error()) {
		return &noSpaceError{err: err}
	}
	return err
}
