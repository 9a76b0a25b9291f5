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

{{/*
Settings the server and the operator both read, with the same values: the
worker-token signing secret (by reference), the Redis key prefix and the
SSRF guard's development switches (the operator passes them to encode pods).
*/}}
{{- define "mpegflow.sharedEnv" -}}
{{ include "mpegflow.secretEnv" (dict "name" "MPEGFLOW_SERVER_SECRET" "secret" .Values.serverSecret.existingSecret "key" .Values.serverSecret.key) }}
- {name: REDIS_KEY_PREFIX, value: {{ .Values.redis.keyPrefix | quote }}}
- {name: MPEGFLOW_ALLOW_HTTP, value: {{ .Values.config.allowHTTP | quote }}}
{{- with .Values.config.egressAllow }}
- {name: MPEGFLOW_EGRESS_ALLOW, value: {{ . | quote }}}
{{- end }}
{{- end -}}

{{/*
The operator's render settings (operator.EnvVars with Render): everything
that decides the objects it applies for a pool. The operator Deployment and
the server Deployment (whose GET /v1/pools/{id}/plan renders with the
operator's code) both include this one list, so their plans cannot drift.
No secret values beyond MPEGFLOW_SERVER_SECRET, which the server has anyway;
the KEDA Redis credentials are only named (MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET).
*/}}
{{- define "mpegflow.operatorRenderEnv" -}}
{{ include "mpegflow.sharedEnv" . }}
- name: MPEGFLOW_OPERATOR_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- {name: MPEGFLOW_ENCODER_IMAGE, value: {{ include "mpegflow.encoderImage" . | quote }}}
- {name: MPEGFLOW_OPERATOR_COORDINATOR, value: {{ include "mpegflow.coordinator" . | quote }}}
- {name: MPEGFLOW_OPERATOR_COORDINATOR_NAMESPACE, value: {{ .Release.Namespace | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_ADDRESS, value: {{ .Values.redis.address | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_DATABASE, value: {{ .Values.redis.database | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_AUTH_SECRET, value: {{ .Values.redis.kedaAuthSecret | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_PASSWORD_ONLY, value: {{ .Values.redis.passwordOnly | quote }}}
{{- with .Values.redis.tls }}
- {name: MPEGFLOW_OPERATOR_REDIS_TLS, value: {{ .enabled | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_TLS_SECRET, value: {{ .existingSecret | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_TLS_CLIENT_CERT, value: {{ .clientCert | quote }}}
- {name: MPEGFLOW_OPERATOR_REDIS_TLS_INSECURE_SKIP_VERIFY, value: {{ .insecureSkipVerify | quote }}}
{{- end }}
- {name: MPEGFLOW_OPERATOR_OBJECT_STORAGE_CIDRS, value: {{ join "," .Values.s3.cidrs | quote }}}
- {name: MPEGFLOW_OPERATOR_OBJECT_STORAGE_PORTS, value: {{ join "," .Values.s3.ports | quote }}}
{{- with .Values.s3.inCluster }}
- {name: MPEGFLOW_OPERATOR_IN_CLUSTER_S3_NAMESPACE, value: {{ .namespace | quote }}}
- {name: MPEGFLOW_OPERATOR_IN_CLUSTER_S3_POD_LABELS, value: {{ include "mpegflow.kvList" .podLabels | quote }}}
- {name: MPEGFLOW_OPERATOR_IN_CLUSTER_S3_PORTS, value: {{ join "," .ports | quote }}}
{{- end }}
{{- with .Values.encoderEgress }}
- {name: MPEGFLOW_OPERATOR_DNS_NAMESPACE, value: {{ .dns.namespace | quote }}}
- {name: MPEGFLOW_OPERATOR_DNS_POD_LABELS, value: {{ include "mpegflow.kvList" .dns.podLabels | quote }}}
- {name: MPEGFLOW_OPERATOR_DNS_CIDRS, value: {{ join "," .dns.cidrs | quote }}}
- {name: MPEGFLOW_OPERATOR_PUBLIC_EGRESS, value: {{ .public.enabled | quote }}}
- {name: MPEGFLOW_OPERATOR_PUBLIC_EGRESS_EXCEPT, value: {{ join "," .public.except | quote }}}
{{- end }}
- {name: MPEGFLOW_OPERATOR_LABELS, value: {{ include "mpegflow.kvList" .Values.operator.poolLabels | quote }}}
{{- with .Values.operator.encoderRequests }}
- {name: MPEGFLOW_OPERATOR_ENCODER_CPU_REQUEST, value: {{ .cpu | toString | quote }}}
- {name: MPEGFLOW_OPERATOR_ENCODER_MEMORY_REQUEST, value: {{ .memory | toString | quote }}}
- {name: MPEGFLOW_OPERATOR_ENCODER_EPHEMERAL_STORAGE_REQUEST, value: {{ .ephemeralStorage | toString | quote }}}
{{- end }}
- {name: MPEGFLOW_OPERATOR_DEFAULT_POOL, value: {{ toJson .Values.defaultPool | quote }}}
{{- end -}}

{{/* Where the server mounts redis.tls.existingSecret. */}}
{{- define "mpegflow.redisTLSDir" -}}
/etc/mpegflow/redis-tls
{{- end -}}

{{/*
The server's Redis TLS settings, from the same redis.tls block that gives
KEDA's trigger enableTLS and its TriggerAuthentication the CA and client
certificate (mpegflow.operatorRenderEnv): REDIS_TLS makes the server refuse
a REDIS_URL Secret whose scheme disagrees, so the two cannot drift apart.
*/}}
{{- define "mpegflow.redisTLSEnv" -}}
{{- $dir := include "mpegflow.redisTLSDir" . -}}
- {name: REDIS_TLS, value: {{ .Values.redis.tls.enabled | quote }}}
{{- with .Values.redis.tls }}
{{- if and .enabled .existingSecret }}
- {name: REDIS_TLS_CA_FILE, value: {{ printf "%s/ca.crt" $dir | quote }}}
{{- if .clientCert }}
- {name: REDIS_TLS_CERT_FILE, value: {{ printf "%s/tls.crt" $dir | quote }}}
- {name: REDIS_TLS_KEY_FILE, value: {{ printf "%s/tls.key" $dir | quote }}}
{{- end }}
{{- end }}
{{- if .enabled }}
- {name: REDIS_TLS_INSECURE_SKIP_VERIFY, value: {{ .insecureSkipVerify | quote }}}
{{- end }}
{{- end }}
{{- end -}}

{{/* A map of labels as the operator's k=v,k=v variables take them, keys sorted. */}}
{{- define "mpegflow.kvList" -}}
{{- $kv := list }}
{{- range $k, $v := . }}
{{- $kv = append $kv (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $kv }}
{{- end -}}

{{/*
The API server's ServiceAccount: the chart's own (named after the release
unless apiserver.serviceAccount.name says otherwise) or an existing one.
*/}}
{{- define "mpegflow.apiserverServiceAccountName" -}}
{{- if .Values.apiserver.serviceAccount.create -}}
{{- default (include "mpegflow.fullname" .) .Values.apiserver.serviceAccount.name -}}
{{- else -}}
{{- required "apiserver.serviceAccount.name is required when apiserver.serviceAccount.create is false" .Values.apiserver.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Pod template labels: the chart's labels and the component over the
section's podLabels, so a podLabel can never change a selector.
Call with (dict "ctx" $ "component" "server" "extra" .Values.apiserver.podLabels "selectorOnly" false).
*/}}
{{- define "mpegflow.podLabels" -}}
{{- $own := fromYaml (include "mpegflow.labels" .ctx) -}}
{{- if .selectorOnly }}{{ $own = fromYaml (include "mpegflow.selectorLabels" .ctx) }}{{ end -}}
{{- $_ := set $own "app.kubernetes.io/component" .component -}}
{{- toYaml (merge $own (deepCopy (.extra | default dict))) -}}
{{- end -}}

{{/* Scheduling escape hatches of one workload section: priorityClassName, nodeSelector, tolerations, affinity. */}}
{{- define "mpegflow.podScheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The REST API's external base URL: config.publicURL, else the first ingress
host (https when the ingress has TLS), else nothing (the server's default).
*/}}
{{- define "mpegflow.publicURL" -}}
{{- if .Values.config.publicURL -}}
{{- trimSuffix "/" .Values.config.publicURL -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $host := (first .Values.ingress.hosts).host -}}
{{- if .Values.ingress.tls }}https{{ else }}http{{ end }}://{{ $host }}
{{- end -}}
{{- end -}}
