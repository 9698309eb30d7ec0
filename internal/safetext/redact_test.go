package safetext

import (
	"fmt"
	"strings"
	"testing"
)

type secretHolder struct{ token string }

func (s secretHolder) String() string { return "{token:" + Redacted(s.token) + "}" }

func (s secretHolder) Format(f fmt.State, verb rune) {
	FormatRedacted(f, verb, "safetext.secretHolder", s.String())
}

func TestFormatRedactedCoversEveryVerb(t *testing.T) {
	s := secretHolder{token: "tok-s3cr3t"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		if got := fmt.Sprintf(format, s); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "redacted") {
			t.Errorf("%s renders %q", format, got)
		}
	}
	if got := fmt.Sprintf("%v", secretHolder{}); got != `{token:""}` {
		t.Errorf("an empty secret renders %q", got)
	}
}
