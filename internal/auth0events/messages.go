package auth0events

import "encoding/json"

// take acts on one frame: the retry directive, the position, then the message itself.
func (s *subscription) take(f frame) error {
	if f.hasRetry {
		s.serverRetry = min(f.retry, maxServerRetry)
	}
	if f.hasID && f.id != "" {
		s.from = From{Offset: f.id}
	}
	now := s.c.cfg.Clock.Now()
	switch {
	case f.event == frameError:
		se := parseError(f.data)
		if se.Offset != nil && *se.Offset != "" && len(*se.Offset) <= maxIDLen {
			s.from = From{Offset: *se.Offset}
		}
		return streamFailure(se, s.token)
	case f.event == frameOffsetOnly || f.event == "" && f.data == "" && !f.tooLarge:
		off := f.id
		if off == "" && f.data != "" {
			var m message
			if json.Unmarshal([]byte(f.data), &m) == nil && len(m.Offset) <= maxIDLen {
				off = m.Offset
			}
		}
		if off != "" {
			s.from = From{Offset: off}
		}
		s.seq++
		s.marks.add(s.seq, off)
		s.marks.finish(s.seq)
		s.report()
		return nil
	}
	ev := parseEvent(f)
	if ev.Offset != "" {
		s.from = From{Offset: ev.Offset}
	}
	s.seq++
	ev.seq = s.seq
	s.marks.add(ev.seq, ev.Offset)
	if s.dedup.Seen(ev.ID, now) {
		s.marks.finish(ev.seq)
		s.report()
		return nil
	}
	s.reorder.Add(ev, now)
	s.release(s.reorder.Ready(now))
	return nil
}

// release hands events to the caller and moves the checkpoint past them.
func (s *subscription) release(evs []Event) {
	for _, ev := range evs {
		s.handle(ev)
		s.marks.finish(ev.seq)
	}
	s.report()
}

func (s *subscription) report() {
	off, moved := s.marks.advance()
	if !moved || off == "" || off == s.reported {
		return
	}
	s.reported = off
	if s.checkpoint != nil {
		s.checkpoint(off)
	}
}
