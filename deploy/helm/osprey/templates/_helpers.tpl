{{/*
Named templates shared by the manifests. Every one takes the root context (.).
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "osprey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<name>, or just <release> when it already holds the name. */}}
{{- define "osprey.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "osprey.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "osprey.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The worker's objects: <fullname>-worker. */}}
{{- define "osprey.workerName" -}}
{{- printf "%s-worker" (include "osprey.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "osprey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "osprey.labels" -}}
helm.sh/chart: {{ include "osprey.chart" . }}
{{ include "osprey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels selectors match on; each workload adds app.kubernetes.io/component. */}}
{{- define "osprey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "osprey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "osprey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "osprey.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "osprey.secretName" -}}
{{- default (include "osprey.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "osprey.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The text of osprey.toml; the pods carry its sha256 so a change rolls them. */}}
{{- define "osprey.config" -}}
{{- .Values.config -}}
{{- end -}}

{{/*
Environment of the server and the worker. The credentials come from the
Secret; `optional: true` leaves a variable unset when its key is absent, so
an empty value never reaches the settings (where "" would be an invalid URL).
*/}}
{{- define "osprey.env" -}}
- name: OSPREY_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "osprey.secretName" . }}
      key: admin-token
      optional: true
- name: OSPREY_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "osprey.secretName" . }}
      key: api-keys
      optional: true
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "osprey.secretName" . }}
      key: database-url
      optional: true
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "osprey.secretName" . }}
      key: redis-url
      optional: true
{{- if .Values.extraEnv }}
{{ toYaml .Values.extraEnv }}
{{- end }}
{{- end -}}

{{/* Mounts of the server and the worker; the volumes are in osprey.volumes. */}}
{{- define "osprey.volumeMounts" -}}
- name: config
  mountPath: /etc/osprey
  readOnly: true
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- if .Values.models.volume }}
- name: models
  mountPath: /models
  readOnly: true
  {{- if .Values.models.subPath }}
  subPath: {{ .Values.models.subPath }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "osprey.volumes" -}}
- name: config
  configMap:
    name: {{ include "osprey.fullname" . }}
- name: data
  {{- if .Values.data.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.data.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.data.sizeLimit }}
  {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .Values.models.volume }}
- name: models
  {{- toYaml .Values.models.volume | nindent 2 }}
{{- end }}
{{- end -}}
