package metrics

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

var (
	expiry  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	renewal = time.Date(2026, 11, 23, 9, 40, 12, 0, time.UTC)
)

func binding(ns, name, userID string, ready metav1.ConditionStatus, expiresAt, nextRefresh *time.Time) *authv1alpha1.IdPTokenBinding {
	b := &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: userID},
			Secret:    authv1alpha1.SecretTarget{Name: name + "-token"},
		},
	}
	if ready != "" {
		b.Status.Conditions = []metav1.Condition{{Type: authv1alpha1.ConditionReady, Status: ready, Reason: "Test"}}
	}
	if expiresAt != nil {
		b.Status.ExpiresAt = &metav1.Time{Time: *expiresAt}
	}
	if nextRefresh != nil {
		b.Status.NextRefreshTime = &metav1.Time{Time: *nextRefresh}
	}
	return b
}

func newReader(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(objs...).Build()
}

func TestBindingCollectorReportsStatusFromTheReader(t *testing.T) {
	reader := newReader(t,
		binding("team-a", "alice-google", "google-oauth2|1122334455", metav1.ConditionTrue, &expiry, &renewal),
		binding("team-b", "bob-github", "github|4711", metav1.ConditionFalse, nil, nil),
		binding("team-b", "new", "github|4712", "", nil, nil),
	)
	want := `
# HELP idptoken_binding_expiration_timestamp_seconds The expiry of the token in the binding's Secret (status.expiresAt), in Unix seconds; absent while unknown.
# TYPE idptoken_binding_expiration_timestamp_seconds gauge
idptoken_binding_expiration_timestamp_seconds{name="alice-google",namespace="team-a"} 1.795428e+09
# HELP idptoken_binding_ready_status The status of the binding's Ready condition: 1 for the current status, 0 for the two others.
# TYPE idptoken_binding_ready_status gauge
idptoken_binding_ready_status{condition="False",name="alice-google",namespace="team-a"} 0
idptoken_binding_ready_status{condition="True",name="alice-google",namespace="team-a"} 1
idptoken_binding_ready_status{condition="Unknown",name="alice-google",namespace="team-a"} 0
idptoken_binding_ready_status{condition="False",name="bob-github",namespace="team-b"} 1
idptoken_binding_ready_status{condition="True",name="bob-github",namespace="team-b"} 0
idptoken_binding_ready_status{condition="Unknown",name="bob-github",namespace="team-b"} 0
idptoken_binding_ready_status{condition="False",name="new",namespace="team-b"} 0
idptoken_binding_ready_status{condition="True",name="new",namespace="team-b"} 0
idptoken_binding_ready_status{condition="Unknown",name="new",namespace="team-b"} 1
# HELP idptoken_binding_renewal_timestamp_seconds When the binding's token is next renewed or re-read (status.nextRefreshTime), in Unix seconds; absent while unscheduled.
# TYPE idptoken_binding_renewal_timestamp_seconds gauge
idptoken_binding_renewal_timestamp_seconds{name="alice-google",namespace="team-a"} 1.795426812e+09
`
	if err := testutil.CollectAndCompare(NewBindingCollector(reader, nil), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestBindingCollectorForgetsDeletedBindings(t *testing.T) {
	alice := binding("team-a", "alice-google", "google-oauth2|1", metav1.ConditionTrue, &expiry, &renewal)
	bob := binding("team-a", "bob-google", "google-oauth2|2", metav1.ConditionTrue, &expiry, &renewal)
	reader := newReader(t, alice, bob)
	c := NewBindingCollector(reader, nil)
	if n := testutil.CollectAndCount(c, BindingExpirationTimestamp); n != 2 {
		t.Fatalf("before delete: %d expiration series, want 2", n)
	}
	if err := reader.Delete(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 5 { // bob: 3 ready + expiration + renewal
		t.Errorf("after delete: %d series, want the 5 of the remaining binding", n)
	}
	out := gatherText(t, c)
	if strings.Contains(out, "alice-google") {
		t.Errorf("deleted binding still reported:\n%s", out)
	}
}

func TestBindingCollectorStaysSilentUntilElected(t *testing.T) {
	reader := newReader(t, binding("team-a", "alice-google", "google-oauth2|1", metav1.ConditionTrue, &expiry, nil))
	elected := make(chan struct{})
	c := NewBindingCollector(reader, elected)
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("standby replica reported %d series, want 0", n)
	}
	close(elected)
	if n := testutil.CollectAndCount(c); n != 4 {
		t.Errorf("leader reported %d series, want 4", n)
	}
}

func TestBindingCollectorLabelsCarryNoUserID(t *testing.T) {
	const userID = "google-oauth2|1122334455"
	reader := newReader(t, binding("team-a", "alice-google", userID, metav1.ConditionTrue, &expiry, &renewal))
	out := gatherText(t, NewBindingCollector(reader, nil))
	if !strings.Contains(out, "alice-google") {
		t.Fatalf("the binding is not reported at all:\n%s", out)
	}
	for _, leak := range []string{userID, "1122334455", "alice-google-token"} {
		if strings.Contains(out, leak) {
			t.Errorf("scrape contains %q:\n%s", leak, out)
		}
	}
}

func BenchmarkBindingCollector(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		objs := make([]client.Object, n)
		for i := range objs {
			objs[i] = binding("team-"+string(rune('a'+i%26)), "binding-"+strconv.Itoa(i), "user|"+strconv.Itoa(i), metav1.ConditionTrue, &expiry, &renewal)
		}
		list := &authv1alpha1.IdPTokenBindingList{}
		for _, o := range objs {
			list.Items = append(list.Items, *o.(*authv1alpha1.IdPTokenBinding))
		}
		c := NewBindingCollector(listReader{list}, nil)
		b.Run(strconv.Itoa(n)+"-bindings", func(b *testing.B) {
			reg := prometheus.NewRegistry() // what the manager serves; the pedantic one checks far more
			reg.MustRegister(c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// listReader serves a fixed list without copying it, as the informer cache does with
// UnsafeDisableDeepCopy, so the benchmark measures the collector and not a fake client.
type listReader struct {
	list *authv1alpha1.IdPTokenBindingList
}

func (r listReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	panic("not used")
}

func (r listReader) List(_ context.Context, l client.ObjectList, _ ...client.ListOption) error {
	*l.(*authv1alpha1.IdPTokenBindingList) = *r.list
	return nil
}

// gatherText renders what a scrape of c would show.
func gatherText(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}
