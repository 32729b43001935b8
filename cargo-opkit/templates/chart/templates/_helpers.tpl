{{- define "{= name =}.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "{= name =}.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "{= name =}.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "{= name =}.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "{= name =}.selectorLabels" -}}
app.kubernetes.io/name: {{ include "{= name =}.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "{= name =}.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "{= name =}.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "{= name =}.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "{= name =}.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "{= name =}.webhookService" -}}
{{- printf "%s-webhook" (include "{= name =}.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "{= name =}.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "{= name =}.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* Whether the admission webhooks are served: enabled, and the operator has some. */}}
{{- define "{= name =}.webhooks" -}}
{{- if and .Values.webhook.enabled (regexMatch "(?m)^kind: " (.Files.Get "files/webhooks.yaml")) }}true{{ end }}
{{- end }}
