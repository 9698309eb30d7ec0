package auth0events

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// frame is one dispatched SSE message (WHATWG HTML, "Server-sent events", interpreting an
// event stream): the fields seen up to a blank line.
type frame struct {
	event string
	data  string
	id    string
	hasID bool
	retry time.Duration
	// hasRetry is set for a valid retry field.
	hasRetry bool
	// tooLarge is set when a line or the data exceeded the limit; data is then empty.
	tooLarge bool
}

// lineReader reads LF- or CRLF-terminated lines of at most max bytes from a stream. A longer
// line is read to its end without being kept, so a hostile server cannot grow memory.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, maxLen int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 16<<10), max: maxLen}
}

// next returns the next line without its terminator. For a line over the limit it returns the
// first max bytes and tooLong. A final line without terminator is dropped, as SSE requires,
// and the read error (io.EOF) returned.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	total := 0
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, err
		}
		total += len(chunk)
		// Keep up to max bytes and a CRLF; past that only count.
		if room := lr.max + 2 - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(len(chunk), room)]...)
		}
		if err != nil {
			continue // bufio.ErrBufferFull: the line goes on
		}
		if total > lr.max+2 {
			return lr.buf[:lr.max], true, nil
		}
		line = trimEOL(lr.buf)
		if len(line) > lr.max {
			return line[:lr.max], true, nil
		}
		return line, false, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// frameParser assembles lines into frames, keeping at most maxData bytes of data per frame.
type frameParser struct {
	maxData int
	cur     frame
	data    strings.Builder
	any     bool
}

// line feeds one line; at a blank line that ends a non-empty frame it returns the frame.
func (p *frameParser) line(line []byte, tooLong bool) (frame, bool) {
	if len(line) == 0 && !tooLong {
		if !p.any {
			return frame{}, false
		}
		f := p.cur
		if !f.tooLarge {
			f.data = strings.TrimSuffix(p.data.String(), "\n")
		}
		p.cur, p.any = frame{}, false
		p.data.Reset()
		return f, true
	}
	if line[0] == ':' {
		return frame{}, false // a comment: ":connected", ": heartbeat"
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if found {
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	p.any = true
	switch string(name) {
	case "data":
		if tooLong || p.data.Len()+len(value)+1 > p.maxData {
			p.cur.tooLarge = true
			p.data.Reset()
		}
		if !p.cur.tooLarge {
			p.data.Write(value)
			p.data.WriteByte('\n')
		}
	case "event":
		p.cur.event = string(value)
	case "id":
		// An id with NUL is ignored (SSE); so is an over-long one, which no offset is.
		if !tooLong && len(value) <= maxIDLen && !bytes.ContainsRune(value, 0) {
			p.cur.id, p.cur.hasID = string(value), true
		}
	case "retry":
		if ms, err := strconv.ParseUint(string(value), 10, 31); err == nil && isDigits(value) {
			p.cur.retry, p.cur.hasRetry = time.Duration(ms)*time.Millisecond, true
		}
	}
	return frame{}, false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
