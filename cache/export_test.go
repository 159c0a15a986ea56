package cache

import "time"

// SetNow replaces the clock; the returned func restores it.
func SetNow(f func() time.Time) func() {
	old := now
	now = f
	return func() { now = old }
}
