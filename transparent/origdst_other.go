//go:build !linux

package transparent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// OriginalDst is only implemented on Linux (netfilter's SO_ORIGINAL_DST).
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, fmt.Errorf("transparent: SO_ORIGINAL_DST: %w", errors.ErrUnsupported)
}
