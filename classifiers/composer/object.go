package composer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/cafilprox/cafilprox/classifiers"
)

// member is one key of a JSON object with its compacted raw value.
type member struct {
	key string
	val json.RawMessage
}

// object is a JSON object that keeps its key order, so that rewritten
// documents stay close to what the registry sent. Values are compacted so
// that equal values compare equal byte for byte (what Composer's strict
// `!==` in MetadataMinifier amounts to).
type object []member

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.val, true
		}
	}
	return nil, false
}

// set replaces key's value in place, or appends it.
func (o *object) set(key string, val json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, member{key, val})
}

func (o *object) del(key string) {
	for i := range *o {
		if (*o)[i].key == key {
			*o = append((*o)[:i:i], (*o)[i+1:]...)
			return
		}
	}
}

func (o object) clone() object { return append(object(nil), o...) }

// str returns a string member, or "" when absent or not a string.
func (o object) str(key string) string {
	raw, ok := o.get(key)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: composer: %s: %v", classifiers.ErrMalformed, what, err)
}

// parseObject reads a JSON object keeping key order; a repeated key keeps
// its first position and its last value, as PHP's json_decode does. The
// document is compacted once here, so every value (and every nested
// object parsed later with parseCompact) is compact.
func parseObject(data []byte) (object, error) {
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := json.Compact(&buf, data); err != nil {
		return nil, malformed("json", err)
	}
	return parseCompact(buf.Bytes())
}

// parseCompact is parseObject for data that is already compact.
func parseCompact(data []byte) (object, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	o, err := decodeObject(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, malformed("json", fmt.Errorf("trailing data after object"))
	}
	return o, nil
}

func decodeObject(d *json.Decoder) (object, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, malformed("json", err)
	}
	if tok != json.Delim('{') {
		return nil, malformed("json", fmt.Errorf("got %v, want an object", tok))
	}
	var o object
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, malformed("json", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, malformed("json", fmt.Errorf("got key %v, want a string", tok))
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, malformed("json", err)
		}
		o.set(key, raw)
	}
	if _, err := d.Token(); err != nil {
		return nil, malformed("json", err)
	}
	return o, nil
}

// parseArrayOfObjects reads a compact JSON array whose elements are objects.
func parseArrayOfObjects(data []byte) ([]object, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, malformed("json", err)
	}
	if tok != json.Delim('[') {
		return nil, malformed("versions", fmt.Errorf("got %v, want an array", tok))
	}
	var out []object
	for d.More() {
		o, err := decodeObject(d)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if _, err := d.Token(); err != nil {
		return nil, malformed("json", err)
	}
	return out, nil
}

// appendObject writes o as compact JSON.
func appendObject(buf *bytes.Buffer, o object) {
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k := jsonString(m.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(m.val)
	}
	buf.WriteByte('}')
}

// unsetMarker is the minified format's "delete this key" value.
var unsetMarker = json.RawMessage(`"__unset"`)

// expand undoes composer/2.0 minification exactly as Composer's
// MetadataMinifier::expand does: each entry after the first holds only
// the keys that changed from the previous expanded entry, "__unset"
// deleting one.
func expand(entries []object) []object {
	out := make([]object, 0, len(entries))
	var cur object
	for i, e := range entries {
		if i == 0 {
			cur = e.clone()
			out = append(out, cur)
			continue
		}
		cur = cur.clone()
		for _, m := range e {
			if bytes.Equal(m.val, unsetMarker) {
				cur.del(m.key)
			} else {
				cur.set(m.key, m.val)
			}
		}
		out = append(out, cur)
	}
	return out
}

// minify is the inverse of expand (MetadataMinifier::minify): expanding its
// result gives back the same keys and values as versions.
func minify(versions []object) []object {
	out := make([]object, 0, len(versions))
	var last object
	for i, v := range versions {
		if i == 0 {
			last = v
			out = append(out, v.clone())
			continue
		}
		var m object
		for _, kv := range v {
			if prev, ok := last.get(kv.key); !ok || !bytes.Equal(prev, kv.val) {
				m = append(m, kv)
			}
		}
		for _, kv := range last {
			if _, ok := v.get(kv.key); !ok {
				m = append(m, member{kv.key, unsetMarker})
			}
		}
		// Expanding keeps existing keys in place and appends new ones,
		// so key order may differ from v; Composer reads the entries as
		// maps, and the content round-trips exactly.
		out = append(out, m)
		last = v
	}
	return out
}

// jsonString encodes s without escaping <, > and & (which json.Marshal
// does), so rewritten URLs read as the registry wrote them.
func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
