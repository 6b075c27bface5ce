{{/* Labels on every object, as the "istio.labels" of istio/istio manifests/charts (each chart's _helpers.tpl). */}}
{{- define "cni.labels" -}}
app.kubernetes.io/name: cni
app.kubernetes.io/part-of: ambient-mesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The pods' labels the DaemonSet selects (upstream istio-cni's k8s-app). */}}
{{- define "cni.selector" -}}
k8s-app: ambient-cni-node
{{- end }}

{{/* {hub}/{component}:{tag}; an image with "/" is used as it is (istio/istio manifests/charts/ztunnel/templates/daemonset.yaml). */}}
{{- define "cni.image" -}}
{{- if contains "/" .image -}}
{{ .image }}
{{- else -}}
{{ .global.hub }}/{{ .image | default .component }}:{{ .global.tag }}
{{- end -}}
{{- end }}
