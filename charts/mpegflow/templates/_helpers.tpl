{{/* Name of the release's objects: the release name, plus "-mpegflow" unless it already says so. */}}
{{- define "mpegflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains "mpegflow" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-mpegflow" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels. app.kubernetes.io/name is always "mpegflow": the operator's
encoder NetworkPolicy lets encode pods reach pods labelled
app.kubernetes.io/name=mpegflow, app.kubernetes.io/component=server.
*/}}
{{- define "mpegflow.selectorLabels" -}}
app.kubernetes.io/name: mpegflow
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mpegflow.labels" -}}
{{ include "mpegflow.selectorLabels" . }}
app.kubernetes.io/part-of: mpegflow
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mpegflow.image" -}}
{{- $tag := .image.tag | default .chart.AppVersion -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "mpegflow.serverImage" -}}
{{- include "mpegflow.image" (dict "image" .Values.image "chart" .Chart) -}}
{{- end -}}

{{- define "mpegflow.encoderImage" -}}
{{- include "mpegflow.image" (dict "image" .Values.encoderImage "chart" .Chart) -}}
{{- end -}}

{{/* Host:port of the gRPC Service the encode pods dial. */}}
{{- define "mpegflow.coordinator" -}}
{{- printf "%s-grpc.%s.svc:%d" (include "mpegflow.fullname" .) .Release.Namespace (int .Values.apiserver.ports.grpc) -}}
{{- end -}}

{{/* Restricted pod security (Pod Security Standards "restricted"). */}}
{{- define "mpegflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mpegflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* A secretKeyRef env var; optional when the key may be absent. */}}
{{- define "mpegflow.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Environment of the server and of the migrations Job: connection settings, secrets by reference. */}}
{{- define "mpegflow.databaseEnv" -}}
{{ include "mpegflow.secretEnv" (dict "name" "DATABASE_URL" "secret" .Values.postgres.existingSecret "key" .Values.postgres.urlKey) }}
- name: MPEGFLOW_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- end -}}
