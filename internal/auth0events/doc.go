// Package auth0events reads a tenant's Auth0 Events API stream (GET /api/v2/events, scope
// read:events) so that the operator can react to a login, a deleted user or a changed
// connection in seconds instead of at the next token expiry. It is the client side only: what
// to do with an event is the caller's business.
//
// # What Auth0 documents (and where)
//
// Sources, read for this package:
//   - [Consume] "Consume Events with the Events API",
//     https://auth0.com/docs/customize/events/consume-events-with-events-api
//     (auth0/docs-v2 main/docs/customize/events/consume-events-with-events-api.mdx at 092b879e3);
//   - [Ref] the endpoint's reference page, main/docs/api/management/v2/events/subscribe-events.mdx
//     (GA, scope read:events);
//   - [BP] "Events Best Practices", main/docs/customize/events/events-best-practices.mdx;
//   - [Cat] the Events Catalog, main/docs/events/** and main/docs/oas/events/events-schema.json;
//   - [Go] github.com/auth0/go-auth0 v3.1.0 (d5be7536): management/events/client.go (Subscribe),
//     management/requests.go (SubscribeEventsRequestParameters), management/events.go
//     (EventStreamSubscribeEventsResponseContent and the CloudEvent types), management/core/stream.go
//     and management/internal/streamer.go (its SSE reader and reconnection).
//
// Wire format. It is Server-Sent Events, not polling [Consume]: one long-lived GET with
// "Accept: text/event-stream" (the SDK sends the same [Go]). Query parameters: from (an offset
// from an earlier message), from_timestamp (RFC 3339, exclusive with from, meant for a first
// connection; without either the stream starts at the latest events [Go]) and event_type,
// repeated once per type. A message is an SSE frame:
//
//	event: user.updated
//	id: <offset>
//	data: {"offset":"<offset>","event":{"id":"evt_…","type":"user.updated","time":"2025-06-01T12:05:00Z","data":{"object":{"user_id":"auth0|123",…}}}}
//
// The SSE id is an opaque offset (a position in the stream) and is repeated as data.offset; the
// CloudEvent inside has its own id (evt_ and 22 characters [Cat]), type, time, source, a0tenant,
// a0stream and data.object (the user for user.*; the connection, with id, name and strategy,
// for connection.* [Go]). Besides events the stream carries ":connected" and ": heartbeat"
// comments, a "retry: <ms>" directive, "event: offset-only" frames whose data is only
// {"offset":…} and that come at the heartbeat frequency, and a terminal "event: error" frame
// after which the server closes the stream [Consume]. The SDK types that error as
// {"error":{"code","message","offset"?}} with the codes invalid_cursor, cursor_expired,
// timeout, payload_too_large, processing_error and connection_timeout [Go].
//
// Resuming. After a disconnection the client sends the last offset it received, as the
// Last-Event-ID header (which wins when both are sent) or as ?from=; every message's id,
// offset-only ones included, should be persisted so that a restart resumes there [Consume].
// Auth0 closes connections "typically every few minutes" for load balancing; that is normal
// and calls for a reconnect with the offset [Consume]. The SDK honours the server's retry:
// (capped at 30 s) before reconnecting and bounds a frame to 1 MiB by default [Go].
//
// Errors at connection time [Consume]: 400 (a malformed offset, or an event type that is not
// supported), 401 (token missing or invalid), 403 (no read:events), 410 (the offset has expired:
// resume with from_timestamp), 429 (rate limit: wait for Retry-After). How long an offset stays
// valid is not documented. The number of concurrent connections is limited per plan (Free 1,
// self-service 4, Enterprise 8) [Consume]. The Management API's usual x-ratelimit-* headers
// apply (x-ratelimit-reset is epoch seconds; main/docs/troubleshoot/…/rate-limit-use-cases.mdx).
//
// Ordering and duplicates. Auth0 does not promise delivery in the order events happened;
// consumers should compare the event's time (and data.object.updated_at) with what they hold,
// and drop duplicates by event id [BP].
//
// # Where this differs from the design contract, and why
//
//   - The contract says to resume "from the last event id". The CloudEvent id (evt_…) cannot
//     resume anything: resuming uses the SSE id, the offset. Event ids are used only to drop
//     duplicates. The offset to persist is Subscribe's checkpoint, which also advances on
//     offset-only frames, as [Consume] asks.
//   - The contract treats an expired offset as HTTP 410. Auth0 also ends an open stream with an
//     "event: error" frame whose code is cursor_expired (or invalid_cursor) [Go]; both are
//     ErrOffsetExpired here. [Consume] says to resume from a from_timestamp; the contract's
//     single re-read of the tenant's identities covers the gap, so a caller does both: re-read
//     once and subscribe again with From.Time set to when the re-read began.
//   - connection.updated is in the Management API's event_type enumeration (go-auth0 lists
//     connection.created, .updated and .deleted) but not yet in the docs' Events Catalog, which
//     has user.*, organization.* and group.* only. A tenant that refuses the type answers 400.
//   - The contract expects a login to produce user.updated. The current English catalog only
//     gives the schema (which carries last_login and logins_count); the older event-types page,
//     still in the fr-ca and ja-jp trees, says user.updated covers updates "by the user
//     themselves after logging in". The simulator publishes user.updated on every Login.
//   - The contract orders out-of-order events by time. Auth0 gives no bound on the disorder, so
//     ordering here is best effort within a short window (Reorder); what the caller does with an
//     event (re-read the user from Auth0) is idempotent and reads the current state, so an
//     event that is still out of order costs a read, not a wrong decision.
//
// # What this package does
//
// Client.Subscribe opens the stream with the caller's Management API token, reconnects when the
// server closes it or it goes silent (after the server's retry:), resumes from the last offset
// received (Last-Event-ID and ?from=), waits out 429s (Retry-After, else x-ratelimit-reset),
// backs off on 5xx, network failures and error frames, and returns ErrOffsetExpired or another
// *Error when waiting cannot help. Frames without an event object (offset-only and the like)
// only move the position. Lines and events are bounded in size; an event too large or
// unreadable is passed on as Incomplete rather than silently lost. Dedup and Reorder are the
// pure helpers it uses; the checkpoint it reports never passes an event not yet handled.
package auth0events
