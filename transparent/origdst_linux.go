//go:build linux

package transparent

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and
// IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h); both are 80.
const soOriginalDst = 80

// OriginalDst returns the destination a connection had before an iptables
// REDIRECT/DNAT rule sent it to this host, read from conntrack with
// getsockopt(SO_ORIGINAL_DST). For a connection that was not translated it
// returns the local address or an error (no conntrack entry).
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("transparent: SO_ORIGINAL_DST: %w", err)
	}
	local, ok := conn.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("transparent: SO_ORIGINAL_DST: unexpected local address %v", conn.LocalAddr())
	}
	is4 := local.AddrPort().Addr().Unmap().Is4()
	var ap netip.AddrPort
	var opErr error
	err = raw.Control(func(fd uintptr) {
		if is4 {
			// The kernel fills a sockaddr_in; IPv6Mreq is merely a
			// 20-byte buffer large enough for it.
			var m *unix.IPv6Mreq
			if m, opErr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, soOriginalDst); opErr == nil {
				sa := m.Multiaddr[:]
				ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4]))
			}
			return
		}
		// Likewise IPv6MTUInfo starts with the sockaddr_in6 the kernel fills.
		var info *unix.IPv6MTUInfo
		if info, opErr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, soOriginalDst); opErr == nil {
			var port [2]byte
			binary.NativeEndian.PutUint16(port[:], info.Addr.Port) // stored in network order
			ap = netip.AddrPortFrom(netip.AddrFrom16(info.Addr.Addr), binary.BigEndian.Uint16(port[:]))
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("transparent: SO_ORIGINAL_DST: %w", err)
	}
	return ap, nil
}
