package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/valyala/fastjson"
)

// item is one event of a request body with the line it starts on. When
// the split checked it (checked true), key and err are the outcome of that
// check, so the event is not parsed twice.
type item struct {
	raw     []byte
	line    int
	checked bool
	key     []byte
	err     error
}

// checkFunc validates an event the split has just parsed, filling in its
// key or error; v is valid only during the call.
type checkFunc func(v *fastjson.Value, it *item)

// BodyError is a body that is not valid JSON, NDJSON or a JSON array.
type BodyError struct {
	Line   int
	Reason string
}

func (e *BodyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// splitBody splits a request body into events. ndjson forces one event per
// line; otherwise a body starting with '[' is an array, a body holding one
// JSON value is one event, and anything else is read as NDJSON. check, when
// not nil, validates each event while its parse is at hand.
func splitBody(body []byte, ndjson bool, p *fastjson.Parser, dst []item, check checkFunc) ([]item, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return dst, &BodyError{Line: 1, Reason: "empty body: send a JSON object, a JSON array or NDJSON"}
	}
	if !ndjson && trimmed[0] == '[' {
		return splitArray(body, p, dst, check)
	}
	if !ndjson && trimmed[0] == '{' && bytes.IndexByte(bytes.TrimRight(trimmed, " \t\r\n"), '\n') >= 0 {
		// A multi-line body may be one pretty-printed object.
		v, err := p.ParseBytes(body)
		if err == nil {
			dst = append(dst, item{raw: bytes.TrimSpace(body), line: 1 + bytes.Count(body[:len(body)-len(trimmed)], []byte{'\n'})})
			if check != nil {
				check(v, &dst[len(dst)-1])
			}
			return dst, nil
		}
		if _, lerr := p.ParseBytes(trimmed[:bytes.IndexByte(trimmed, '\n')]); lerr != nil {
			// Not NDJSON either: report the syntax error of the
			// pretty-printed object on the line where it is.
			line, reason := locate(body, err)
			return dst, &BodyError{Line: line, Reason: "malformed JSON: " + reason}
		}
	}
	return splitLines(body, p, dst, check)
}

func splitLines(body []byte, p *fastjson.Parser, dst []item, check checkFunc) ([]item, error) {
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		v, err := p.ParseBytes(l)
		if err != nil {
			return dst, &BodyError{Line: line, Reason: "malformed JSON: " + syntaxReason(l, err)}
		}
		dst = append(dst, item{raw: l, line: line})
		if check != nil {
			check(v, &dst[len(dst)-1])
		}
	}
	return dst, nil
}

func splitArray(body []byte, p *fastjson.Parser, dst []item, check checkFunc) ([]item, error) {
	v, err := p.ParseBytes(body)
	if err != nil {
		line, reason := locate(body, err)
		return dst, &BodyError{Line: line, Reason: "malformed JSON: " + reason}
	}
	arr, _ := v.Array()
	// Each element is re-serialized compactly. fastjson keeps no positions,
	// so array elements carry no line; errors name them by index.
	for _, el := range arr {
		dst = append(dst, item{raw: el.MarshalTo(nil), line: 0})
		if check != nil {
			check(el, &dst[len(dst)-1])
		}
	}
	return dst, nil
}

// locate finds the line of a syntax error using encoding/json, which
// reports byte offsets, on this slow path only.
func locate(body []byte, fallback error) (int, string) {
	var v any
	err := json.Unmarshal(body, &v)
	if se, ok := err.(*json.SyntaxError); ok {
		// An unexpected end of input is on the last line that is not blank.
		off := min(se.Offset, int64(len(bytes.TrimRight(body, " \t\r\n"))))
		return 1 + bytes.Count(body[:off], []byte{'\n'}), se.Error()
	}
	if err != nil {
		return 1 + bytes.Count(body, []byte{'\n'}), err.Error()
	}
	return 1, fallback.Error()
}

func syntaxReason(l []byte, err error) string {
	var v any
	if e := json.Unmarshal(l, &v); e != nil {
		return e.Error()
	}
	return err.Error()
}
