{{/* Labels on every object, as the "istio.labels" of istio/istio manifests/charts (each chart's _helpers.tpl). */}}
{{- define "base.labels" -}}
app.kubernetes.io/name: base
app.kubernetes.io/part-of: ambient-mesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Renders each CRD of a file, labelled (istio/istio manifests/charts/base/templates/crds.yaml). */}}
{{- define "base.crds" -}}
{{- $labels := include "base.labels" .root | fromYaml }}
{{- range $doc := .root.Files.Get .file | splitList "\n---\n" }}
{{- $crd := $doc | fromYaml }}
{{- if $crd.metadata }}
{{- $_ := set $crd.metadata "labels" $labels }}
---
{{ $crd | toYaml }}
{{- end }}
{{- end }}
{{- end }}
