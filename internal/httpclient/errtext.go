package httpclient

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// WriteStatus writes the HTTP status ("404 Not Found") or, when no response was received
// (status 0), instead in lower case (the error's kind, e.g. "network").
//
// The clients' errors read alike: a prefix naming the request, then
//
//	404 Not Found (inexistent_user): The user does not exist.: cause (retry after 5s)
//
// WriteStatus writes the status, the client the code in its own form, and WriteDetail the rest.
func WriteStatus(b *strings.Builder, status int, instead string) {
	if status != 0 {
		fmt.Fprintf(b, "%d %s", status, http.StatusText(status))
		return
	}
	b.WriteString(strings.ToLower(instead))
}

// WriteDetail writes ": message", ": cause" and " (retry after d)", each only when there is
// one. message must already be scrubbed and clipped: it is written as it is.
func WriteDetail(b *strings.Builder, message string, cause error, retryAfter time.Duration) {
	if message != "" {
		b.WriteString(": ")
		b.WriteString(message)
	}
	if cause != nil {
		b.WriteString(": ")
		b.WriteString(cause.Error())
	}
	if retryAfter > 0 {
		fmt.Fprintf(b, " (retry after %s)", retryAfter)
	}
}
