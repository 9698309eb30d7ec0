package controller

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Interning: every object the cache decodes brings its own copy of each string, and most of a
// cached binding's or target Secret's strings are the same few words in every copy: the
// namespace, label and annotation keys, the operator's label values, a condition's type, status
// and reason. The cache transforms replace them by one canonical copy (the unique package), so
// that 10,000 bindings hold one "Ready" instead of 10,000. Strings that differ from object to
// object (names, UIDs, messages, times) are left as they are: interning them would only add
// the canonical table's entry to each.

// intern returns the canonical copy of s.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// internedValues are the label and annotation keys whose values are few across a cluster.
var internedValues = map[string]bool{
	authv1alpha1.LabelManagedBy:       true,
	authv1alpha1.LabelRole:            true,
	authv1alpha1.AnnotationProvider:   true,
	authv1alpha1.AnnotationConnection: true,
	authv1alpha1.AnnotationTenant:     true,
}

// internMap replaces the keys of m, and the values of internedValues keys, by canonical copies.
// Assigning to an existing string key stores the key given (Go maps update string keys on
// assignment), so no entry is added or removed while ranging.
func internMap(m map[string]string) {
	for k, v := range m {
		if internedValues[k] {
			v = intern(v)
		}
		m[intern(k)] = v
	}
}

// internMeta interns an object's namespace, label and annotation keys (and the few values that
// repeat), finalizers and owner references' API version and kind.
func internMeta(o metav1.Object) {
	o.SetNamespace(intern(o.GetNamespace()))
	internMap(o.GetLabels())
	internMap(o.GetAnnotations())
	if f := o.GetFinalizers(); len(f) > 0 {
		for i := range f {
			f[i] = intern(f[i])
		}
	}
	if refs := o.GetOwnerReferences(); len(refs) > 0 {
		name, uid := o.GetLabels()[authv1alpha1.LabelBinding], o.GetAnnotations()[authv1alpha1.AnnotationBindingUID]
		for i := range refs {
			r := &refs[i]
			r.APIVersion, r.Kind = intern(r.APIVersion), intern(r.Kind)
			// A target Secret's reference to its binding repeats what its label and annotation
			// hold: it shares their strings instead of a copy of its own.
			if r.Name == name {
				r.Name = name
			}
			if string(r.UID) == uid {
				r.UID = types.UID(uid)
			}
			r.Controller, r.BlockOwnerDeletion = sharedBool(r.Controller), sharedBool(r.BlockOwnerDeletion)
		}
	}
}

// sharedTrue and sharedFalse stand for every owner reference's controller and
// blockOwnerDeletion flags in the cache, which is never written to (only copies are).
var sharedTrue, sharedFalse = true, false

func sharedBool(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return &sharedTrue
	default:
		return &sharedFalse
	}
}

// internObject interns the repeated strings of the objects the operator caches in numbers:
// bindings and Secrets (target Secrets' data keys included).
func internObject(obj any) {
	switch o := obj.(type) {
	case *authv1alpha1.IdPTokenBinding:
		internMeta(o)
		internTypeMeta(&o.TypeMeta)
		internBinding(o)
	case *corev1.Secret:
		internMeta(o)
		internTypeMeta(&o.TypeMeta)
		o.Type = corev1.SecretType(intern(string(o.Type)))
		for k, v := range o.Data {
			o.Data[intern(k)] = v
		}
	}
}

func internTypeMeta(t *metav1.TypeMeta) {
	t.APIVersion, t.Kind = intern(t.APIVersion), intern(t.Kind)
}

func internBinding(b *authv1alpha1.IdPTokenBinding) {
	s := &b.Spec
	s.TenantRef.Kind = authv1alpha1.TenantKind(intern(string(s.TenantRef.Kind)))
	s.TenantRef.Name = intern(s.TenantRef.Name)
	if s.User != nil {
		s.User.Connection = intern(s.User.Connection)
	}
	s.Secret.Type = corev1.SecretType(intern(string(s.Secret.Type)))
	s.DeletionPolicy = authv1alpha1.DeletionPolicy(intern(string(s.DeletionPolicy)))
	st := &b.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason = intern(c.Type), intern(c.Reason)
		c.Status = metav1.ConditionStatus(intern(string(c.Status)))
	}
	st.ExpirySource = authv1alpha1.ExpirySource(intern(string(st.ExpirySource)))
	if id := st.Identity; id != nil {
		id.Provider, id.Connection = intern(id.Provider), intern(id.Connection)
	}
}
