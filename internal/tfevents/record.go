// Package tfevents writes and reads TensorBoard event files: TFRecord framing
// around hand-encoded tensorflow.Event protobuf messages carrying scalar
// summaries. It is pure Go (no cgo, no protobuf library).
//
// We wrote it ourselves because no maintained Go package fits: the Go
// packages we found either need TensorFlow's C library through cgo
// (github.com/helinwang/tfsum) or take an already serialized Summary and have
// not been updated for years (github.com/c3sr/tensorflow/tensorboard). Scalars
// need only five protobuf fields, which are encoded here by hand.
//
// A file is a sequence of records, each
//
//	uint64 length (little endian)
//	uint32 masked CRC-32C of those 8 bytes
//	length bytes of payload (one serialized Event)
//	uint32 masked CRC-32C of the payload
//
// with mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The first event
// of a file carries file_version "brain.Event:2". The Go tests check the
// framing, the CRCs and the encoding byte for byte against a file written by
// the Python tensorboard package (testdata/, scripts/fixtures/make_tensorboard_fixture.py).
package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskDelta is TFRecord's CRC mask constant.
const maskDelta = 0xa282ead8

// MaskedCRC is TFRecord's masked CRC-32C (Castagnoli) of b.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + maskDelta
}

// headerLen and footerLen frame a record's payload.
const (
	headerLen = 12 // length + masked CRC of the length
	footerLen = 4  // masked CRC of the payload
)

// maxRecord bounds a record's payload when reading, so a corrupt length
// cannot make a reader allocate gigabytes. Scalar events are a few KiB.
const maxRecord = 64 << 20

// AppendRecord appends data framed as one TFRecord to buf.
func AppendRecord(buf, data []byte) []byte {
	var h [headerLen]byte
	binary.LittleEndian.PutUint64(h[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(h[8:], MaskedCRC(h[:8]))
	buf = append(buf, h[:]...)
	buf = append(buf, data...)
	return binary.LittleEndian.AppendUint32(buf, MaskedCRC(data))
}

// ErrTorn reports a record cut short at the end of the data, as left by a
// writer killed in the middle of a write.
var ErrTorn = errors.New("tfevents: torn record at the end")

// ErrCorrupt reports a record whose length or payload fails its CRC.
var ErrCorrupt = errors.New("tfevents: corrupt record")

// SplitRecords splits b into its records' payloads (sub-slices of b). It
// stops at the first record that is torn (ErrTorn) or fails a CRC
// (ErrCorrupt), returning the records before it and, in n, the number of
// bytes they span; on success n is len(b).
func SplitRecords(b []byte) (records [][]byte, n int, err error) {
	for n < len(b) {
		rest := b[n:]
		if len(rest) < headerLen {
			return records, n, ErrTorn
		}
		if binary.LittleEndian.Uint32(rest[8:12]) != MaskedCRC(rest[:8]) {
			return records, n, fmt.Errorf("%w: length CRC mismatch at byte %d", ErrCorrupt, n)
		}
		size := binary.LittleEndian.Uint64(rest[:8])
		if size > maxRecord {
			return records, n, fmt.Errorf("%w: record of %d bytes at byte %d", ErrCorrupt, size, n)
		}
		end := headerLen + int(size) + footerLen
		if len(rest) < end {
			return records, n, ErrTorn
		}
		data := rest[headerLen : headerLen+int(size)]
		if binary.LittleEndian.Uint32(rest[end-footerLen:end]) != MaskedCRC(data) {
			return records, n, fmt.Errorf("%w: payload CRC mismatch at byte %d", ErrCorrupt, n)
		}
		records = append(records, data)
		n += end
	}
	return records, n, nil
}
