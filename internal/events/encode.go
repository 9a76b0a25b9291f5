package events

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/google/uuid"
)

// encode is json.Marshal(e), byte for byte (the same fields in the same
// order, the same escaping, Data through encoding/json), written field by
// field: every job posts two or three events, and reflecting over the
// struct was most of their cost (TestEncodeIsMarshal).
func encode(e *Event) ([]byte, error) {
	b := make([]byte, 0, 192)
	b = append(b, `{"id":"`...)
	b = appendUUID(b, e.ID)
	b = append(b, `","type":`...)
	b, err := appendString(b, e.Type)
	if err != nil {
		return nil, err
	}
	if e.OrgID != nil {
		b = append(b, `,"org_id":"`...)
		b = append(appendUUID(b, *e.OrgID), '"')
	}
	if e.JobID != nil {
		b = append(b, `,"job_id":"`...)
		b = append(appendUUID(b, *e.JobID), '"')
	}
	if e.PoolID != "" {
		b = append(b, `,"pool_id":`...)
		if b, err = appendString(b, e.PoolID); err != nil {
			return nil, err
		}
	}
	if len(e.Data) > 0 {
		if b, err = appendData(append(b, `,"data":`...), e.Data); err != nil {
			return nil, err
		}
	}
	at, err := e.At.MarshalJSON() // refuses years past 9999, as Marshal does
	if err != nil {
		return nil, err
	}
	b = append(append(b, `,"at":`...), at...)
	return append(b, '}'), nil
}

// appendString appends s as a JSON string: as it is when nothing in it
// needs escaping (printable ASCII but the quote, the backslash and the
// three characters encoding/json escapes for HTML), else as
// encoding/json writes it.

func appendString(b []byte, s string) ([]byte, error) {
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

// appendUUID appends u in its canonical form, as uuid.UUID.String has it.
func appendUUID(b []byte, u uuid.UUID) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	hex.Encode(buf[9:13], u[4:6])
	hex.Encode(buf[14:18], u[6:8])
	hex.Encode(buf[19:23], u[8:10])
	hex.Encode(buf[24:], u[10:])
	buf[8], buf[13], buf[18], buf[23] = '-', '-', '-', '-'
	return append(b, buf[:]...)
}

// appendData appends an event's data as encoding/json writes a map: keys
// sorted, strings, integers, booleans, ids and nil written here, anything
// else (floats, lists, maps) by encoding/json.
func appendData(b []byte, data map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendString(b, k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		switch v := data[k].(type) {
		case nil:
			b = append(b, "null"...)
		case string:
			b, err = appendString(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case uuid.UUID:
			b = append(appendUUID(append(b, '"'), v), '"')
		default:
			var q []byte
			if q, err = json.Marshal(v); err == nil {
				b = append(b, q...)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}
