package safetensors

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// encodeHeader returns the JSON header for entries (in data order) and
// metadata, padded with spaces to a multiple of 8 bytes so that the data
// buffer starts 8-byte aligned, as the reference writer does. Metadata is
// omitted when empty; its keys are written sorted.
func encodeHeader(entries []entry, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
		first = false
	}
	for _, e := range entries {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, e.name)
		b.WriteString(`:{"dtype":`)
		writeJSONString(&b, string(e.dtype))
		b.WriteString(`,"shape":[`)
		for i, d := range e.shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(e.begin, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(e.end, 10))
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrHeaderTooLarge, b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), nil
}

// writeJSONString writes s as a JSON string. s must be valid UTF-8; only the
// characters JSON requires are escaped.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
