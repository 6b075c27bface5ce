{{/* Labels on every object, as the "istio.labels" of istio/istio manifests/charts (each chart's _helpers.tpl). */}}
{{- define "controlplane.labels" -}}
app.kubernetes.io/name: controlplane
app.kubernetes.io/part-of: ambient-mesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The pods' labels: what the Service and the PodDisruptionBudget select (istiod's app and istio labels). */}}
{{- define "controlplane.selector" -}}
app: istiod
istio: pilot
{{- end }}

{{/* {hub}/{component}:{tag}; an image with "/" is used as it is (istio/istio manifests/charts/ztunnel/templates/daemonset.yaml). */}}
{{- define "controlplane.image" -}}
{{- if contains "/" .image -}}
{{ .image }}
{{- else -}}
{{ .global.hub }}/{{ .image | default .component }}:{{ .global.tag }}
{{- end -}}
{{- end }}
