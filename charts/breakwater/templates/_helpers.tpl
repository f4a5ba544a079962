{{/*
Names and labels shared by every template. One install per cluster: the CRD, the
ClusterRole and the MutatingWebhookConfiguration are cluster-scoped.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "breakwater.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: fullnameOverride, else the release name (plus the chart name when the release name does not contain it). */}}
{{- define "breakwater.fullname" -}}
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

{{- define "breakwater.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object; pass a dict with "ctx" (the root context) and "component". */}}
{{- define "breakwater.labels" -}}
helm.sh/chart: {{ include "breakwater.chart" .ctx }}
app.kubernetes.io/name: {{ include "breakwater.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The controller pods' selector (never changes between upgrades: a Deployment's selector is immutable). */}}
{{- define "breakwater.controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "breakwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "breakwater.controller.name" -}}
{{- printf "%s-controller" (include "breakwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "breakwater.serviceAccountName" -}}
{{- default (include "breakwater.controller.name" .) .Values.controller.serviceAccount.name }}
{{- end }}

{{/* The webhook's Service and MutatingWebhookConfiguration share this name. */}}
{{- define "breakwater.webhook.name" -}}
{{- printf "%s-webhook" (include "breakwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "breakwater.webhook.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "breakwater.fullname" .)) .Values.webhook.certSecretName }}
{{- end }}

{{- define "breakwater.leaseName" -}}
{{- default (include "breakwater.controller.name" .) .Values.controller.leaseName }}
{{- end }}

{{- define "breakwater.injectionConfigName" -}}
{{- printf "%s-injection" (include "breakwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "repository:tag" of an image block; an empty tag means the chart's appVersion. Pass a dict with "image" and "ctx". */}}
{{- define "breakwater.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* Namespaces the webhook never sees: kube-system, the release namespace and webhook.excludeNamespaces. */}}
{{- define "breakwater.webhook.excludedNamespaces" -}}
{{- $out := list "kube-system" .Release.Namespace }}
{{- range .Values.webhook.excludeNamespaces }}
{{- $out = append $out . }}
{{- end }}
{{- toJson (uniq $out) }}
{{- end }}

{{/* The injection config (the ConfigMap's injection.yaml); the Deployment hashes it. */}}
{{- define "breakwater.injectionConfig" -}}
{{- $s := .Values.sidecar -}}
image: {{ include "breakwater.image" (dict "image" $s.image "ctx" .) | quote }}
imagePullPolicy: {{ $s.image.pullPolicy }}
resources:
  {{- toYaml $s.resources | nindent 2 }}
readiness: {{ $s.readiness }}
unreadyAfter: {{ $s.unreadyAfter | quote }}
drain: {{ $s.drain | quote }}
logLevel: {{ $s.logLevel }}
env:
  {{- toYaml $s.env | nindent 2 }}
proxyPort: {{ $s.proxyPort }}
adminPort: {{ $s.adminPort }}
{{- end }}
