{{/*
Names, labels and the pieces the master's and the workers' pod specs share.
Every object name derives from "swarmer.fullname", and so do the flags and
the Role's resourceNames that repeat them, so they cannot disagree.
*/}}

{{/* The prefix of every name: `swarmer` for the release `swarmer`. Cut to
leave room for the longest suffix (-master) within 63 characters. */}}
{{- define "swarmer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "swarmer.master" -}}{{ include "swarmer.fullname" . }}-master{{- end -}}
{{- define "swarmer.worker" -}}{{ include "swarmer.fullname" . }}-worker{{- end -}}
{{- define "swarmer.web" -}}{{ include "swarmer.fullname" . }}-web{{- end -}}
{{- define "swarmer.scaler" -}}{{ include "swarmer.fullname" . }}-scaler{{- end -}}

{{- define "swarmer.scriptConfigMap" -}}
{{- .Values.script.existingConfigMap | default (printf "%s-script" (include "swarmer.fullname" .)) -}}
{{- end -}}

{{- define "swarmer.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "swarmer.fullname" .)) -}}
{{- end -}}

{{- define "swarmer.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Labels of every object; call with (list $ "component"). */}}
{{- define "swarmer.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{ include "swarmer.selectorLabels" . }}
{{- end -}}

{{/* The labels selectors match on; the instance keeps two releases in one
namespace apart. Call with (list $ "component"). */}}
{{- define "swarmer.selectorLabels" -}}
app.kubernetes.io/name: swarmer
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The pod security context of every swarmer pod: the image's non-root
user 65532, which meets the "restricted" Pod Security Standard. */}}
{{- define "swarmer.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "swarmer.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The cluster token from the auth Secret, for the master and workers. */}}
{{- define "swarmer.clusterTokenEnv" -}}
- name: SWARMER_CLUSTER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "swarmer.authSecret" . }}
      key: cluster-token
{{- end -}}

{{/* Pod annotations that roll the pods when the script or the chart-made
credentials change (kustomize does it with hashed names). */}}
{{- define "swarmer.checksums" -}}
{{- if not .Values.script.existingConfigMap }}
checksum/script: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.auth.existingSecret }}
checksum/auth: {{ printf "%s|%s" .Values.auth.clusterToken .Values.auth.webAuth | sha256sum }}
{{- end }}
{{- end -}}

{{/* --autoscale MIN:MAX, validated: two whole numbers, MIN <= MAX <=
master.maxWorkers, and not in job mode. Empty when unset. */}}
{{- define "swarmer.autoscale" -}}
{{- with .Values.autoscale -}}
{{- $spec := toString . -}}
{{- if $.Values.job.enabled -}}
{{- fail "autoscale resizes the worker Deployment, which job mode does not have: unset autoscale or job.enabled" -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+:[0-9]+$" $spec) -}}
{{- fail (printf "autoscale %q must be MIN:MAX, two whole numbers, e.g. 2:10" $spec) -}}
{{- end -}}
{{- $parts := splitList ":" $spec -}}
{{- $min := index $parts 0 | atoi -}}
{{- $max := index $parts 1 | atoi -}}
{{- if gt $min $max -}}
{{- fail (printf "autoscale %q: MIN %d is above MAX %d" $spec $min $max) -}}
{{- end -}}
{{- if gt $max (int $.Values.master.maxWorkers) -}}
{{- fail (printf "autoscale %q: MAX %d is above master.maxWorkers %d" $spec $max (int $.Values.master.maxWorkers)) -}}
{{- end -}}
{{- $spec -}}
{{- end -}}
{{- end -}}
