//go:build !unix

package fs

import "os"

// tryLock without flock: the first Open of a process always cleans up.
func tryLock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	return f, err == nil, err
}
