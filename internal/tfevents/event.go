package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FileVersion is the file_version of the first event of every file.
const FileVersion = "brain.Event:2"

// Event is the part of tensorflow.Event (tensorboard/compat/proto/event.proto)
// that scalar logging uses. At most one of FileVersion, Values and
// SessionStart is set, as in the protobuf's oneof.
type Event struct {
	WallTime    float64 // seconds since the Unix epoch (field 1, double)
	Step        int64   // global step (field 2, int64)
	FileVersion string  // field 3
	Values      []Value // summary (field 5) -> Summary.value (field 1, repeated)
	// SessionStart marks a SessionLog{status: START} (field 7): TensorBoard
	// drops the events it already holds at steps >= Step when a run restarts.
	SessionStart bool
}

// Value is a tensorflow.Summary.Value holding a simple_value scalar.
type Value struct {
	Tag    string  // field 1
	Scalar float32 // simple_value, field 2 (float)
}

// Protobuf field numbers and wire types used here.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5

	eventWallTime    = 1
	eventStep        = 2
	eventFileVersion = 3
	eventSummary     = 5
	eventSessionLog  = 7
	summaryValue     = 1
	valueTag         = 1
	valueSimple      = 2
	sessionStatus    = 1
	sessionStart     = 1 // SessionLog.SessionStatus.START
)

func appendKey(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytes(b []byte, field int, data []byte) []byte {
	b = appendKey(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// Marshal encodes e as the protobuf wire format, fields in number order and
// proto3 defaults (zero wall time, step 0, empty strings) left out, as the
// reference implementation does. simple_value is in a oneof, so it is
// written even when 0.
func (e *Event) Marshal() []byte {
	var b []byte
	if e.WallTime != 0 {
		b = appendKey(b, eventWallTime, wireFixed64)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.WallTime))
	}
	if e.Step != 0 {
		b = appendKey(b, eventStep, wireVarint)
		b = binary.AppendUvarint(b, uint64(e.Step)) // int64: negatives take 10 bytes
	}
	switch {
	case e.FileVersion != "":
		b = appendBytes(b, eventFileVersion, []byte(e.FileVersion))
	case e.Values != nil:
		var sum []byte
		for _, v := range e.Values {
			var val []byte
			if v.Tag != "" {
				val = appendBytes(val, valueTag, []byte(v.Tag))
			}
			val = appendKey(val, valueSimple, wireFixed32)
			val = binary.LittleEndian.AppendUint32(val, math.Float32bits(v.Scalar))
			sum = appendBytes(sum, summaryValue, val)
		}
		b = appendBytes(b, eventSummary, sum)
	case e.SessionStart:
		var sl []byte
		sl = appendKey(sl, sessionStatus, wireVarint)
		sl = binary.AppendUvarint(sl, sessionStart)
		b = appendBytes(b, eventSessionLog, sl)
	}
	return b
}

// errProto reports a payload that is not a valid protobuf message.
var errProto = errors.New("tfevents: malformed protobuf")

// field is one decoded protobuf field.
type field struct {
	num, wire int
	u         uint64 // varint, fixed64 and fixed32 values
	data      []byte // length-delimited values
}

// fields decodes a message's top-level fields.
func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errProto
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case wireVarint:
			f.u, n = binary.Uvarint(b)
			if n <= 0 {
				return nil, errProto
			}
			b = b[n:]
		case wireFixed64:
			if len(b) < 8 {
				return nil, errProto
			}
			f.u, b = binary.LittleEndian.Uint64(b), b[8:]
		case wireFixed32:
			if len(b) < 4 {
				return nil, errProto
			}
			f.u, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case wireBytes:
			size, n := binary.Uvarint(b)
			if n <= 0 || size > uint64(len(b)-n) {
				return nil, errProto
			}
			f.data, b = b[n:n+int(size)], b[n+int(size):]
		default:
			return nil, fmt.Errorf("%w: wire type %d", errProto, f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

// Unmarshal decodes an Event payload. Fields other than those of Event are
// skipped; values of a summary that are not simple_value scalars are dropped.
func Unmarshal(b []byte) (Event, error) {
	var e Event
	fs, err := fields(b)
	if err != nil {
		return e, err
	}
	for _, f := range fs {
		switch {
		case f.num == eventWallTime && f.wire == wireFixed64:
			e.WallTime = math.Float64frombits(f.u)
		case f.num == eventStep && f.wire == wireVarint:
			e.Step = int64(f.u)
		case f.num == eventFileVersion && f.wire == wireBytes:
			e.FileVersion = string(f.data)
		case f.num == eventSummary && f.wire == wireBytes:
			vals, err := decodeSummary(f.data)
			if err != nil {
				return e, err
			}
			e.Values = append(e.Values, vals...)
			if e.Values == nil {
				e.Values = []Value{}
			}
		case f.num == eventSessionLog && f.wire == wireBytes:
			sl, err := fields(f.data)
			if err != nil {
				return e, err
			}
			for _, s := range sl {
				if s.num == sessionStatus && s.wire == wireVarint && s.u == sessionStart {
					e.SessionStart = true
				}
			}
		}
	}
	return e, nil
}

func decodeSummary(b []byte) ([]Value, error) {
	fs, err := fields(b)
	if err != nil {
		return nil, err
	}
	var out []Value
	for _, f := range fs {
		if f.num != summaryValue || f.wire != wireBytes {
			continue
		}
		vf, err := fields(f.data)
		if err != nil {
			return nil, err
		}
		var v Value
		simple := false
		for _, x := range vf {
			switch {
			case x.num == valueTag && x.wire == wireBytes:
				v.Tag = string(x.data)
			case x.num == valueSimple && x.wire == wireFixed32:
				v.Scalar, simple = math.Float32frombits(uint32(x.u)), true
			}
		}
		if simple {
			out = append(out, v)
		}
	}
	return out, nil
}
