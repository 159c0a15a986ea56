package dnsredirect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

// NewResolver returns a resolver for the proxy's own upstream connections
// that talks to the given resolvers (host:port, or host for port 53) and
// never to the system's configured name servers, which on a gateway may be
// the redirector itself (a loop that would send the proxy to itself).
//
// Successive dials rotate through the list, so when one resolver does not
// answer, the Go resolver's retry reaches the next. An empty list returns a
// pure-Go resolver with the system configuration.
func NewResolver(upstream []string) *net.Resolver {
	if len(upstream) == 0 {
		return &net.Resolver{PreferGo: true}
	}
	addrs := make([]string, 0, len(upstream))
	for _, u := range upstream {
		if a, err := normalizeUpstream(u); err == nil {
			addrs = append(addrs, a)
		}
	}
	var next atomic.Uint32
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if len(addrs) == 0 {
				return nil, errors.New("dnsredirect: no valid upstream resolver")
			}
			start := int(next.Add(1) - 1)
			var errs []error
			for i := range addrs {
				addr := addrs[(start+i)%len(addrs)]
				c, err := d.DialContext(ctx, network, addr)
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, fmt.Errorf("dnsredirect: dialing upstream resolvers: %w", errors.Join(errs...))
		},
	}
}
