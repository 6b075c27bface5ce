{{/* Labels on every object, as the "istio.labels" of istio/istio manifests/charts (each chart's _helpers.tpl). */}}
{{- define "ztunnel.labels" -}}
app.kubernetes.io/name: ztunnel
app.kubernetes.io/part-of: ambient-mesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The pods' labels the DaemonSet selects (upstream's app: ztunnel). */}}
{{- define "ztunnel.selector" -}}
app: ztunnel
{{- end }}

{{/* {hub}/{component}:{tag}; an image with "/" is used as it is (istio/istio manifests/charts/ztunnel/templates/daemonset.yaml). */}}
{{- define "ztunnel.image" -}}
{{- if contains "/" .image -}}
{{ .image }}
{{- else -}}
{{ .global.hub }}/{{ .image | default .component }}:{{ .global.tag }}
{{- end -}}
{{- end }}
