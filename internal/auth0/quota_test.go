package auth0

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/idptoken/idptoken-operator/internal/metrics"
)

func TestParseQuotaHeader(t *testing.T) {
	now := fakeStart
	at := func(secs int) time.Time { return now.Add(time.Duration(secs) * time.Second) }
	tests := map[string]struct {
		value string
		want  []QuotaBucket
	}{
		"Auth0's example": {
			value: "b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200",
			want: []QuotaBucket{
				{Entity: "client", Name: "per_hour", Quota: 10, Remaining: 7, ResetAt: at(3540)},
				{Entity: "client", Name: "per_day", Quota: 50, Remaining: 47, ResetAt: at(43200)},
			},
		},
		"spaces, any order, unknown keys": {
			value: " r=0 ; b=per_hour ; x=whatever; t=60 ; q=100 ,  b=per_day;r=3;q=9;t=600",
			want: []QuotaBucket{
				{Entity: "client", Name: "per_hour", Quota: 100, Remaining: 0, ResetAt: at(60)},
				{Entity: "client", Name: "per_day", Quota: 9, Remaining: 3, ResetAt: at(600)},
			},
		},
		"q and t may be missing": {
			value: "b=per_minute;r=50",
			want:  []QuotaBucket{{Entity: "client", Name: "per_minute", Remaining: 50}},
		},
		"a malformed bucket is left out, the others kept": {
			value: "b=per_hour;q=ten;r=7;t=3540,b=per_day;q=50;r=47;t=43200",
			want:  []QuotaBucket{{Entity: "client", Name: "per_day", Quota: 50, Remaining: 47, ResetAt: at(43200)}},
		},
		"without a name or remaining": {value: "q=10;r=7;t=3540,b=per_day;q=50;t=43200"},
		"negative remaining":          {value: "b=per_hour;q=10;r=-1;t=3540"},
		"fractional remaining":        {value: "b=per_hour;q=10;r=1.5;t=3540"},
		"absurd reset":                {value: "b=per_hour;q=10;r=1;t=99999999999"},
		"empty value":                 {value: "b=per_hour;q=10;r=;t=3540"},
		"a key without a value":       {value: "b=per_hour;q;r=1"},
		"a name that is not a name":   {value: "b=per hour;r=1,b=PER_DAY;r=1,b=/etc;r=1,b=" + strings.Repeat("x", 33) + ";r=1"},
		"nothing":                     {value: ""},
		"only separators":             {value: ",;,;;"},
		"the first of two buckets with one name counts": {
			value: "b=per_hour;r=5,b=per_hour;r=0",
			want:  []QuotaBucket{{Entity: "client", Name: "per_hour", Remaining: 5}},
		},
		"at most four buckets": {
			value: "b=a;r=1,b=b;r=1,b=c;r=1,b=d;r=1,b=e;r=1",
			want: []QuotaBucket{
				{Entity: "client", Name: "a", Remaining: 1}, {Entity: "client", Name: "b", Remaining: 1},
				{Entity: "client", Name: "c", Remaining: 1}, {Entity: "client", Name: "d", Remaining: 1},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := parseQuotaHeader("client", tc.value, now)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseQuotaHeader(%q) =\n %+v\nwant\n %+v", tc.value, got, tc.want)
			}
		})
	}
}

func FuzzParseQuotaHeader(f *testing.F) {
	for _, seed := range []string{
		"b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200",
		"b=per_hour;q=2;r=1;t=924", "b=per_minute;r=50", ";,=;b=;r=", "b=x;r=9223372036854775807;t=1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got := parseQuotaHeader("organization", value, fakeStart)
		if len(got) > maxQuotaBuckets {
			t.Fatalf("%d buckets from one header", len(got))
		}
		seen := map[string]bool{}
		for _, b := range got {
			if !validBucketName(b.Name) || seen[b.Name] || b.Entity != "organization" {
				t.Fatalf("bucket %+v: bad or repeated name", b)
			}
			seen[b.Name] = true
			resetOK := b.ResetAt.IsZero() || !b.ResetAt.Before(fakeStart) && b.ResetAt.Sub(fakeStart) <= maxQuotaResetIn*time.Second
			if b.Remaining < 0 || b.Quota < 0 || !resetOK {
				t.Fatalf("bucket %+v out of bounds", b)
			}
		}
	})
}

func TestTokenHold(t *testing.T) {
	now := fakeStart
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := map[string]struct {
		status     int
		header     http.Header
		desc       string
		wantHold   time.Duration
		wantReason string
	}{
		"429 Retry-After": {
			status: 429, header: h("Retry-After", "7200", "Auth0-Client-Quota-Limit", "b=per_hour;q=100;r=0;t=7200"),
			wantHold: 2 * time.Hour, wantReason: QuotaReasonQuota,
		},
		"429 spent daily bucket outlasts Retry-After": {
			status: 429, header: h("Retry-After", "60", "Auth0-Client-Quota-Limit", "b=per_hour;q=100;r=0;t=60,b=per_day;q=1000;r=0;t=5000"),
			wantHold: 5000 * time.Second, wantReason: QuotaReasonQuota,
		},
		"429 bucket reset without Retry-After": {
			status: 429, header: h("Auth0-Organization-Quota-Limit", "b=per_hour;q=5;r=0;t=1800", "X-Ratelimit-Reset", epoch(now.Add(time.Minute))),
			wantHold: 30 * time.Minute, wantReason: QuotaReasonQuota,
		},
		"429 only x-ratelimit-reset": {
			status: 429, header: h("X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", epoch(now.Add(20*time.Second))),
			wantHold: 20 * time.Second, wantReason: QuotaReasonRateLimit,
		},
		"429 without any hint": {status: 429, header: h(), wantHold: defaultRetryAfter, wantReason: QuotaReasonRateLimit},
		"429 Retry-After beyond a day": {
			status: 429, header: h("Retry-After", "2592000"), wantHold: maxTokenHold, wantReason: QuotaReasonRateLimit,
		},
		"500 global limit by headers": {
			status: 500, header: h("X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", epoch(now.Add(40*time.Second))),
			wantHold: 40 * time.Second, wantReason: QuotaReasonGlobalRateLimit,
		},
		"500 global limit by its text alone": {
			status: 500, header: h(), desc: "Global limit has been reached",
			wantHold: defaultRetryAfter, wantReason: QuotaReasonGlobalRateLimit,
		},
		"500 remaining 0 without a reset":  {status: 500, header: h("X-Ratelimit-Remaining", "0")},
		"500 plain":                        {status: 500, header: h(), desc: "Internal error"},
		"502 with the global limit's text": {status: 502, header: h(), desc: "Global limit has been reached"},
		"200 with a spent bucket":          {status: 200, header: h("Auth0-Client-Quota-Limit", "b=per_hour;q=1;r=0;t=60")},
		"401":                              {status: 401, header: h("Retry-After", "60")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			buckets, named := parseQuotaHeaders(tc.header, now)
			hold, reason := tokenHold(tc.status, tc.header, tc.desc, buckets, named, now)
			if hold != tc.wantHold || reason != tc.wantReason {
				t.Errorf("tokenHold = %v %q, want %v %q", hold, reason, tc.wantHold, tc.wantReason)
			}
		})
	}
}

func TestM2MQuotaReportsBucketsHoldAndMetric(t *testing.T) {
	f := newFakeAuth0(t)
	const tenant = "Auth0Tenant/team-q/quota"
	granted := tokenAnswer{status: 200, headers: map[string]string{
		"Auth0-Client-Quota-Limit":       "b=per_hour;q=100;r=99;t=3000,b=per_day;q=1000;r=500;t=80000",
		"Auth0-Organization-Quota-Limit": "b=per_hour;q=50;r=47;t=3000",
	}}
	answers := []tokenAnswer{
		granted,
		{status: 429, body: quotaBody, headers: map[string]string{
			"Retry-After": "3000", "Auth0-Client-Quota-Limit": "b=per_hour;q=100;r=0;t=3000,b=per_day;q=1000;r=400;t=79000",
		}},
		{status: 200}, // the quota was removed: no header
	}
	i := 0
	requests := scriptTokens(f, func() (tokenAnswer, bool) {
		a := answers[i]
		i++
		if a.status == 200 {
			a.body = `{"access_token":"` + m2mTokenPrefix + `q","token_type":"Bearer","expires_in":30}`
		}
		return a, true
	})
	fc := clocktesting.NewFakeClock(fakeStart)
	c := f.client(t, func(cfg *Config) { cfg.Clock = fc; cfg.MetricsTenant = tenant })
	ctx := testContext(t)

	if got := c.M2MQuota(); !reflect.DeepEqual(got, QuotaState{}) {
		t.Errorf("before any request: %+v, want the zero state", got)
	}
	if _, err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	want := QuotaState{Buckets: []QuotaBucket{
		{Entity: "client", Name: "per_hour", Quota: 100, Remaining: 99, ResetAt: fakeStart.Add(3000 * time.Second)},
		{Entity: "client", Name: "per_day", Quota: 1000, Remaining: 500, ResetAt: fakeStart.Add(80000 * time.Second)},
		{Entity: "organization", Name: "per_hour", Quota: 50, Remaining: 47, ResetAt: fakeStart.Add(3000 * time.Second)},
	}}
	if got := c.M2MQuota(); !reflect.DeepEqual(got, want) {
		t.Errorf("after a granted token:\n %+v\nwant\n %+v", got, want)
	}
	wantGauges(t, tenant, map[string]float64{"client/per_hour": 99, "client/per_day": 500, "organization/per_hour": 47})

	fc.Step(time.Minute) // the 30 s token is due
	if _, err := c.Authenticate(ctx); err == nil {
		t.Fatal("Authenticate succeeded against a spent quota")
	}
	got := c.M2MQuota()
	if wantUntil := fakeStart.Add(time.Minute + 3000*time.Second); !got.HeldUntil.Equal(wantUntil) || got.Reason != QuotaReasonQuota {
		t.Errorf("after the 429: held until %v (%q), want %v (quota)", got.HeldUntil, got.Reason, wantUntil)
	}
	if len(got.Buckets) != 2 || got.Buckets[0].Remaining != 0 || got.Buckets[1].Remaining != 400 {
		t.Errorf("after the 429: buckets %+v, want the 429's two client buckets", got.Buckets)
	}
	wantGauges(t, tenant, map[string]float64{"client/per_hour": 0, "client/per_day": 400})

	fc.Step(3000 * time.Second)
	if _, err := c.Authenticate(ctx); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
	if got := c.M2MQuota(); !reflect.DeepEqual(got, QuotaState{}) {
		t.Errorf("after a granted token without quota headers: %+v, want no hold and no buckets", got)
	}
	wantGauges(t, tenant, map[string]float64{})
	if n := requests.Load(); n != 3 {
		t.Errorf("%d token requests, want 3", n)
	}
}

// wantGauges checks the tenant's idptoken_auth0_m2m_quota_remaining series.
func wantGauges(t *testing.T, tenant string, want map[string]float64) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range families {
		if fam.GetName() != metrics.Auth0M2MQuotaRemaining {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tenant"] == tenant {
				got[labels["bucket"]] = m.GetGauge().GetValue()
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s{tenant=%q} = %v, want %v", metrics.Auth0M2MQuotaRemaining, tenant, got, want)
	}
}
