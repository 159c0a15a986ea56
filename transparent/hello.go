package transparent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// MaxHelloSize bounds the bytes read while looking for the ClientHello.
// Post-quantum key shares make hellos of 2-3 KB common; 64 KiB is the
// largest handshake message a TLS record sequence can reasonably carry.
const MaxHelloSize = 64 << 10

const (
	recordTypeHandshake    = 22
	handshakeClientHello   = 1
	extensionServerName    = 0
	recordHeaderLen        = 5
	maxRecordPayload       = 16384 + 256 // TLSPlaintext limit plus slack some stacks use
	serverNameTypeHostName = 0
)

// ErrNotTLS reports that a connection did not start with a TLS ClientHello.
var ErrNotTLS = errors.New("transparent: not a TLS ClientHello")

// ReadClientHello reads TLS records from r until it holds a complete
// ClientHello (which may span several records) and returns every byte read,
// for replaying to the real TLS server, together with the SNI host name
// (lower-case; "" when the client sent none or sent an IP literal).
func ReadClientHello(r io.Reader) (raw []byte, serverName string, err error) {
	var buf bytes.Buffer
	var msg []byte // handshake bytes reassembled from record payloads
	for {
		hdr := make([]byte, recordHeaderLen)
		if _, err := io.ReadFull(io.TeeReader(r, &buf), hdr); err != nil {
			return buf.Bytes(), "", fmt.Errorf("transparent: reading record header: %w", err)
		}
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			return buf.Bytes(), "", ErrNotTLS
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > maxRecordPayload {
			return buf.Bytes(), "", fmt.Errorf("%w: record length %d", ErrNotTLS, n)
		}
		if buf.Len()+n > MaxHelloSize {
			return buf.Bytes(), "", fmt.Errorf("transparent: ClientHello larger than %d bytes", MaxHelloSize)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(io.TeeReader(r, &buf), payload); err != nil {
			return buf.Bytes(), "", fmt.Errorf("transparent: reading record: %w", err)
		}
		msg = append(msg, payload...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeClientHello {
			return buf.Bytes(), "", fmt.Errorf("%w: handshake type %d", ErrNotTLS, msg[0])
		}
		bodyLen := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if bodyLen > MaxHelloSize {
			return buf.Bytes(), "", fmt.Errorf("transparent: ClientHello larger than %d bytes", MaxHelloSize)
		}
		if len(msg) < 4+bodyLen {
			continue
		}
		name, err := parseServerName(msg[4 : 4+bodyLen])
		return buf.Bytes(), name, err
	}
}

// parseServerName extracts the host_name from the server_name extension of
// a ClientHello body (RFC 8446 4.1.2, RFC 6066 3).
func parseServerName(body []byte) (string, error) {
	s := cryptobyte.String(body)
	var version uint16
	var random, sessionID, suites, compression cryptobyte.String
	if !s.ReadUint16(&version) || !s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return "", fmt.Errorf("%w: malformed ClientHello", ErrNotTLS)
	}
	if s.Empty() {
		return "", nil // no extensions at all (very old clients)
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return "", fmt.Errorf("%w: malformed extensions", ErrNotTLS)
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return "", fmt.Errorf("%w: malformed extension", ErrNotTLS)
		}
		if typ != extensionServerName {
			continue
		}
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
			return "", fmt.Errorf("%w: malformed server_name", ErrNotTLS)
		}
		for !list.Empty() {
			var nameType uint8
			var name cryptobyte.String
			if !list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) {
				return "", fmt.Errorf("%w: malformed server_name", ErrNotTLS)
			}
			if nameType == serverNameTypeHostName {
				return normalizeServerName(string(name))
			}
		}
		return "", nil
	}
	return "", nil
}

// normalizeServerName lower-cases a host name and rejects anything that is
// not a plausible DNS name, so a client cannot smuggle ports, paths or
// control characters into the dial address or the logs. IP literals (not
// allowed in SNI) count as no name.
func normalizeServerName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if _, err := netip.ParseAddr(name); err == nil {
		return "", nil
	}
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("%w: invalid server name", ErrNotTLS)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%w: invalid server name %q", ErrNotTLS, name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%w: invalid server name %q", ErrNotTLS, name)
			}
		}
	}
	return name, nil
}
