package auth0events

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// frames parses a whole stream with the given limit.
func frames(t testing.TB, stream string, limit int) []frame {
	t.Helper()
	lr := newLineReader(strings.NewReader(stream), limit)
	p := frameParser{maxData: limit}
	var out []frame
	for {
		line, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if len(line) > limit {
			t.Fatalf("a line of %d bytes passed the limit %d", len(line), limit)
		}
		if f, ok := p.line(line, tooLong); ok {
			out = append(out, f)
		}
	}
}

func TestFrames(t *testing.T) {
	tests := map[string]struct {
		stream string
		limit  int
		want   []frame
	}{
		"Auth0's documented example": {
			stream: ":connected\n\nretry: 2000\n\nevent: user.created\nid: MTIz\ndata: {\"offset\":\"MTIz\"}\n\n" +
				"event: offset-only\nid: 4Lcu\ndata: {\"offset\":\"4Lcu\"}\n\n: heartbeat\n\n",
			want: []frame{
				{retry: 2 * time.Second, hasRetry: true},
				{event: "user.created", id: "MTIz", hasID: true, data: `{"offset":"MTIz"}`},
				{event: "offset-only", id: "4Lcu", hasID: true, data: `{"offset":"4Lcu"}`},
			},
		},
		"CRLF line ends": {
			stream: "event: user.updated\r\nid: a\r\ndata: x\r\n\r\n",
			want:   []frame{{event: "user.updated", id: "a", hasID: true, data: "x"}},
		},
		"data lines are joined with LF": {
			stream: "data: a\ndata:b\ndata\n\n",
			want:   []frame{{data: "a\nb\n"}},
		},
		"only one leading space is removed": {
			stream: "data:  two\n\n",
			want:   []frame{{data: " two"}},
		},
		"a final frame without blank line is dropped": {
			stream: "data: a\n\ndata: b\n",
			want:   []frame{{data: "a"}},
		},
		"an id with NUL is ignored": {
			stream: "id: a\x00b\ndata: x\n\n",
			want:   []frame{{data: "x"}},
		},
		"a bad retry is ignored": {
			stream: "retry: 12a\nretry: -5\ndata: x\n\n",
			want:   []frame{{data: "x"}},
		},
		"unknown fields are ignored": {
			stream: "foo: bar\ndata: x\n\n",
			want:   []frame{{data: "x"}},
		},
		"an over-long data line marks the frame": {
			stream: "event: user.updated\nid: o1\ndata: " + strings.Repeat("x", 100) + "\n\nid: o2\ndata: ok\n\n",
			limit:  32,
			want: []frame{
				{event: "user.updated", id: "o1", hasID: true, tooLarge: true},
				{id: "o2", hasID: true, data: "ok"},
			},
		},
		"data over the limit in several lines marks the frame": {
			stream: "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n",
			limit:  24,
			want:   []frame{{tooLarge: true}},
		},
		"an over-long comment is skipped": {
			stream: ":" + strings.Repeat("h", 100) + "\ndata: x\n\n",
			limit:  16,
			want:   []frame{{data: "x"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = 1024
			}
			if got := frames(t, tc.stream, limit); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLineReaderLongLineAcrossBuffers(t *testing.T) {
	// Longer than bufio's 16 KiB buffer, so the line arrives in several chunks.
	long := strings.Repeat("y", 40<<10)
	lr := newLineReader(strings.NewReader("data: "+long+"\r\nnext\n"), 64<<10)
	line, tooLong, err := lr.next()
	if err != nil || tooLong || string(line) != "data: "+long {
		t.Fatalf("got %d bytes, tooLong %v, err %v", len(line), tooLong, err)
	}
	line, tooLong, err = lr.next()
	if err != nil || tooLong || string(line) != "next" {
		t.Fatalf("second line: %q %v %v", line, tooLong, err)
	}
	lr = newLineReader(strings.NewReader(long+"\nnext\n"), 1<<10)
	if line, tooLong, _ = lr.next(); !tooLong || len(line) != 1<<10 {
		t.Fatalf("over the limit: %d bytes, tooLong %v", len(line), tooLong)
	}
	if line, _, _ = lr.next(); string(line) != "next" {
		t.Fatalf("the line after an over-long one: %q", line)
	}
}

// FuzzFrames feeds arbitrary streams: nothing panics and no line or data passes the limit.
func FuzzFrames(f *testing.F) {
	f.Add("event: user.updated\nid: a\ndata: {}\n\n", 64)
	f.Add(":c\r\n\r\nretry: 10\ndata\ndata: x\n\n", 8)
	f.Add("id: \x00\ndata: \xff\n\n", 4)
	f.Fuzz(func(t *testing.T, stream string, limit int) {
		limit = 1 + abs(limit)%256
		for _, fr := range frames(t, stream, limit) {
			if len(fr.data) > limit || len(fr.id) > maxIDLen {
				t.Fatalf("frame over the limit %d: %+v", limit, fr)
			}
			_, _ = parseEvent(fr)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1)
	}
	return n
}
