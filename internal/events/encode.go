package events

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/mpegflow/mpegflow/internal/jsonw"
)

// encode is json.Marshal(e), byte for byte (the same fields in the same
// order, the same escaping, Data through encoding/json), written field by
// field: every job posts two or three events, and reflecting over the
// struct was most of their cost (TestEncodeIsMarshal).
func encode(e *Event) ([]byte, error) {
	b := make([]byte, 0, 192)
	b = append(b, `{"id":"`...)
	b = jsonw.UUID(b, e.ID)
	b = append(b, `","type":`...)
	b, err := jsonw.String(b, e.Type)
	if err != nil {
		return nil, err
	}
	if e.OrgID != nil {
		b = append(b, `,"org_id":"`...)
		b = append(jsonw.UUID(b, *e.OrgID), '"')
	}
	if e.JobID != nil {
		b = append(b, `,"job_id":"`...)
		b = append(jsonw.UUID(b, *e.JobID), '"')
	}
	if e.PoolID != "" {
		b = append(b, `,"pool_id":`...)
		if b, err = jsonw.String(b, e.PoolID); err != nil {
			return nil, err
		}
	}
	if len(e.Data) > 0 {
		if b, err = appendData(append(b, `,"data":`...), e.Data); err != nil {
			return nil, err
		}
	}
	if b, err = jsonw.Time(append(b, `,"at":`...), e.At); err != nil { // refuses years past 9999, as Marshal does
		return nil, err
	}
	return append(b, '}'), nil
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
		if b, err = jsonw.String(b, k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		switch v := data[k].(type) {
		case nil:
			b = append(b, "null"...)
		case string:
			b, err = jsonw.String(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case uuid.UUID:
			b = append(jsonw.UUID(append(b, '"'), v), '"')
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
