{{/* The chart's name. */}}
{{- define "idptoken.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, the prefix of every object. */}}
{{- define "idptoken.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "idptoken.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "idptoken.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: idptoken-operator
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "idptoken.selectorLabels" -}}
app.kubernetes.io/name: {{ include "idptoken.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{- define "idptoken.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "idptoken.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "idptoken.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
idptoken.managerRules renders the manager's RBAC rules, read from files/rbac/role.yaml (a copy
of config/rbac/role.yaml that `make chart-sync` keeps in step), keeping only the resources of the
given scope: "all", "namespaced" or "cluster". A rule is split per resource so that a rule mixing
both scopes lands half in a Role and half in the ClusterRole.
*/}}
{{- define "idptoken.managerRules" -}}
{{- $root := .root }}
{{- $clusterScoped := list "tokenreviews" "subjectaccessreviews" "namespaces" "nodes" "clusterroles" "clusterrolebindings" "customresourcedefinitions" }}
{{- range $path, $_ := $root.Files.Glob "files/crds/*.yaml" }}
{{- $crd := $root.Files.Get $path | fromYaml }}
{{- if eq $crd.spec.scope "Cluster" }}
{{- $clusterScoped = append $clusterScoped $crd.spec.names.plural }}
{{- end }}
{{- end }}
{{- $role := $root.Files.Get "files/rbac/role.yaml" | fromYaml }}
{{- $rules := list }}
{{- range $rule := $role.rules }}
{{- if eq $.scope "all" }}
{{- $rules = append $rules $rule }}
{{- else }}
{{- range $res := $rule.resources }}
{{- $isCluster := has (first (splitList "/" $res)) $clusterScoped }}
{{- if or (and $isCluster (eq $.scope "cluster")) (and (not $isCluster) (eq $.scope "namespaced")) }}
{{- $rules = append $rules (dict "apiGroups" $rule.apiGroups "resources" (list $res) "verbs" $rule.verbs) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
