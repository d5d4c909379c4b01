{{/* The chart's name, or nameOverride. */}}
{{- define "seatwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: object names, the default ServiceAccount, RBAC names. */}}
{{- define "seatwarden.fullname" -}}
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

{{- define "seatwarden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "seatwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seatwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "seatwarden.labels" -}}
helm.sh/chart: {{ include "seatwarden.chart" . }}
{{ include "seatwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seatwarden
{{- end }}

{{- define "seatwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seatwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "seatwarden.image" -}}
{{- /* The schema requires it too; this message also covers --skip-schema-validation. */ -}}
{{- $_ := required "image.repository is required: there is no public seatwarden image. Build it from the repository's Dockerfile, push it to your registry and set image.repository (e.g. --set image.repository=registry.example.com/platform/seatwarden)" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Refuse settings that would be unsafe: two replicas without leader election are two writers to
Atlassian, which could act on the same user twice.
*/}}
{{- define "seatwarden.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: only the lease holder may write to Atlassian" }}
{{- end }}
{{- end }}
