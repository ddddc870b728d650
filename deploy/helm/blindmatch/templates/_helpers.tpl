{{- define "blindmatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "blindmatch.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "blindmatch.labels" -}}
{{ include "blindmatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "blindmatch.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "blindmatch.claim" -}}
{{ .Values.table.existingClaim | default (printf "%s-table" (include "blindmatch.fullname" .)) }}
{{- end -}}

{{/* The image's user; fsGroup makes the secret files readable to it. */}}
{{- define "blindmatch.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "blindmatch.securityContext" -}}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The secrets, copied from /secrets (root's, group-readable) into the
     memory volume /keys as the server's user, mode 0600. */}}
{{- define "blindmatch.copyKeys" -}}
- name: keys
  image: {{ .Values.toolsImage.repository }}:{{ .Values.toolsImage.tag }}
  command: ["sh", "-c", "umask 077 && cp -L /secrets/* /keys/"]
  securityContext:
    {{- include "blindmatch.securityContext" . | nindent 4 }}
  volumeMounts:
    - { name: secrets, mountPath: /secrets, readOnly: true }
    - { name: keys, mountPath: /keys }
{{- end -}}

{{/* serve's and build's settings from values, as --NAME=VALUE. */}}
{{- define "blindmatch.flags" -}}
{{- $flags := list }}
{{- range $name, $value := . }}
{{- $flags = append $flags (printf "- --%s=%v" $name $value) }}
{{- end }}
{{- join "\n" $flags }}
{{- end -}}
