{{/* The headless master's flags in job mode: how many workers to wait
for, the profile, the thresholds, the reports on /results and the
history. A list of YAML sequence items. */}}
{{- define "swarmer.headlessArgs" -}}
{{- $job := .Values.job -}}
- --headless
- --expect-workers
- {{ .Values.workers.replicas | default 1 | quote }}
- --expect-workers-max-wait
- {{ $job.expectWorkersMaxWait | quote }}
{{- if $job.stages }}
- --stages
- {{ $job.stages | quote }}
{{- else }}
- -u
- {{ $job.users | quote }}
- -r
- {{ $job.spawnRate | quote }}
- -t
- {{ $job.runTime | quote }}
{{- end }}
{{- range $job.thresholds }}
- --threshold
- {{ . | quote }}
{{- end }}
- --only-summary
- --junit
- /results/junit.xml
- --html
- /results/report.html
- --csv
- /results/swarmer
{{- if $job.history }}
- --history
- {{ $job.history | quote }}
{{- else }}
- --no-history
{{- end }}
- --stop-timeout
- {{ .Values.workers.stopTimeout | quote }}
{{- range $job.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
