// Package jsonw appends values to a JSON document byte for byte as
// encoding/json.Marshal writes them, without reflection: for the few
// documents written on every job (its events, the answer to its
// submission), where reflecting over the struct was most of their cost.
// Each writer's tests hold it to json.Marshal's output.
package jsonw

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// String appends s as a JSON string: as it is when nothing in it needs
// escaping (printable ASCII but the quote, the backslash and the three
// characters encoding/json escapes for HTML), else as encoding/json
// writes it.
func String(b []byte, s string) ([]byte, error) {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(b, q...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// UUID appends u in its canonical form, as uuid.UUID.String has it,
// unquoted.
func UUID(b []byte, u uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	hex.Encode(buf[9:13], u[4:6])
	hex.Encode(buf[14:18], u[6:8])
	hex.Encode(buf[19:23], u[8:10])
	hex.Encode(buf[24:], u[10:])
	buf[8], buf[13], buf[18], buf[23] = '-', '-', '-', '-'
	return append(b, buf[:]...)
}

// Time appends t as a JSON string, as time.Time.MarshalJSON writes it
// (RFC 3339 with nanoseconds; years past 9999 are refused).
func Time(b []byte, t time.Time) ([]byte, error) {
	b, err := t.AppendText(append(b, '"'))
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// Raw appends the JSON document raw as encoding/json writes a
// json.RawMessage: null when raw is nil, else compacted, with the
// characters it escapes for HTML escaped; a raw that is not JSON (or is
// empty) is an error.
func Raw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	n := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	b = buf.Bytes()
	if bytes.ContainsAny(b[n:], "<>&\u2028\u2029") {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, b[n:])
		b = append(b[:n], esc.Bytes()...)
	}
	return b, nil
}

// Float32 appends f as encoding/json writes a float32; NaN and the
// infinities, which JSON cannot hold, are an error.
func Float32(b []byte, f float32) ([]byte, error) {
	if abs := math.Abs(float64(f)); abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, float64(f), 'f', -1, 32), nil
	}
	q, err := json.Marshal(f) // exponents, and the refusals
	if err != nil {
		return nil, err
	}
	return append(b, q...), nil
}

// Int appends n.
func Int(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }
