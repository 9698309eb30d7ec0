package auth0events

// take acts on one frame: the retry directive, the position, then the message itself.
func (s *subscription) take(f frame) error {
	if f.hasRetry {
		s.serverRetry = min(f.retry, maxServerRetry)
	}
	if f.hasID && f.id != "" {
		s.from = From{Offset: f.id}
	}
	if f.event == eventError {
		se := parseError(f.data)
		if se.Offset != nil && *se.Offset != "" && len(*se.Offset) <= maxIDLen {
			s.from = From{Offset: *se.Offset}
		}
		return streamFailure(se, s.token)
	}
	now := s.c.cfg.Clock.Now()
	ev, marker := parseEvent(f)
	if ev.Offset != "" {
		s.from = From{Offset: ev.Offset}
	}
	if marker {
		// offset-only, a retry: directive or an id alone: the position moves, nothing to handle.
		s.seq++
		s.marks.add(s.seq, ev.Offset)
		s.marks.finish(s.seq)
		s.report()
		return nil
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
