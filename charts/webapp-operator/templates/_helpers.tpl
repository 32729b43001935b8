{{- define "webapp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webapp-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "webapp-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "webapp-operator.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "webapp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webapp-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "webapp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "webapp-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webapp-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webapp-operator.webhookService" -}}
{{- printf "%s-webhook" (include "webapp-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webapp-operator.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "webapp-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* Whether the admission webhooks are served: enabled, and the operator has some. */}}
{{- define "webapp-operator.webhooks" -}}
{{- if and .Values.webhook.enabled (regexMatch "(?m)^kind: " (.Files.Get "files/webhooks.yaml")) }}true{{ end }}
{{- end }}
