package idp

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/oauth2"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/idptoken/idptoken-operator/internal/metrics"
)

func TestRefreshIsCountedByProviderAndResult(t *testing.T) {
	const provider = "metrics-test-strategy"
	f := newFakeIDP(t, strict, oauth2.AuthStyleInParams)
	ep := f.endpoint()
	ep.Provider = provider
	r := &Refresher{HTTPClient: f.httpClient(t)}
	tok, err := r.Refresh(testContext(t), ep, initialRT)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh(testContext(t), ep, initialRT); err == nil { // spent: invalid_grant
		t.Fatal("a spent refresh token was accepted")
	}
	if _, err := r.Refresh(testContext(t), ep, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{metrics.ResultSuccess: 2, metrics.ResultInvalidGrant: 1}
	got := map[string]float64{}
	var durations uint64
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			if label(m, "provider") != provider {
				continue
			}
			switch fam.GetName() {
			case metrics.IdPRefreshTotal:
				got[label(m, "result")] = m.GetCounter().GetValue()
			case metrics.IdPRefreshDuration:
				durations = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if len(got) != len(want) || got[metrics.ResultSuccess] != 2 || got[metrics.ResultInvalidGrant] != 1 {
		t.Errorf("%s by result = %v, want %v", metrics.IdPRefreshTotal, got, want)
	}
	if durations != 3 {
		t.Errorf("%s counted %d refreshes, want 3", metrics.IdPRefreshDuration, durations)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
