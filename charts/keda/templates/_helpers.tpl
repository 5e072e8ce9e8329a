{{/*
Shared template snippets of the keda-rs chart.
*/}}

{{/* <chart name>-<version> for the helm.sh/chart label ("+" is not allowed in label values). */}}
{{- define "keda.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object that is not release-specific (also what upstream puts on CRDs). */}}
{{- define "keda.baseLabels" -}}
helm.sh/chart: {{ include "keda.chart" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Values.customManagedBy | default .Release.Service }}
app.kubernetes.io/part-of: {{ .Values.operator.name }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Labels of every object of the release. */}}
{{- define "keda.labels" -}}
{{ include "keda.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels of a component's objects: `app` (what Services and PodDisruptionBudgets select), `name`,
app.kubernetes.io/name and the common labels. Call with (list $ "<component name>").
*/}}
{{- define "keda.componentLabels" -}}
{{- $ctx := index . 0 -}}
{{- $name := index . 1 -}}
app: {{ $name }}
name: {{ $name }}
app.kubernetes.io/name: {{ $name }}
{{ include "keda.labels" $ctx }}
{{- end -}}

{{/* Object names. */}}
{{- define "keda.operatorName" -}}{{ .Values.operator.name }}{{- end -}}
{{- define "keda.metricsServerName" -}}{{ .Values.operator.name }}-metrics-apiserver{{- end -}}
{{- define "keda.webhooksName" -}}{{ .Values.webhooks.name }}{{- end -}}

{{/* ServiceAccount names; the flat serviceAccount.name of old chart versions is a fallback. */}}
{{- define "keda.operatorServiceAccount" -}}
{{- (.Values.serviceAccount.operator).name | default .Values.serviceAccount.name | default "keda-operator" -}}
{{- end -}}
{{- define "keda.metricsServerServiceAccount" -}}
{{- (.Values.serviceAccount.metricServer).name | default .Values.serviceAccount.name | default "keda-metrics-server" -}}
{{- end -}}
{{- define "keda.webhooksServiceAccount" -}}
{{- (.Values.serviceAccount.webhooks).name | default .Values.serviceAccount.name | default "keda-webhook" -}}
{{- end -}}

{{/*
The image of a component: (list $ "keda"|"metricsApiServer"|"webhooks").
A component override applies field by field; upstream's own default repositories count as unset, so a
values file copied from the upstream chart still selects the keda-rs image.
*/}}
{{- define "keda.image" -}}
{{- $ctx := index . 0 -}}
{{- $img := $ctx.Values.image -}}
{{- $over := index $img (index . 1) | default dict -}}
{{- $upstreamRepos := list "kedacore/keda" "kedacore/keda-metrics-apiserver" "kedacore/keda-admission-webhooks" -}}
{{- $repository := $over.repository | default "" -}}
{{- $registry := $over.registry | default "" -}}
{{- if has $repository $upstreamRepos -}}
{{- $repository = "" -}}
{{- $registry = "" -}}
{{- end -}}
{{- $repository = $repository | default $img.repository | default "keda-rs/keda" -}}
{{- $registry = (($ctx.Values.global).image).registry | default $registry | default $img.registry | default "ghcr.io" -}}
{{- $tag := $over.tag | default $img.tag | default $ctx.Chart.AppVersion -}}
{{- if $registry -}}
{{ $registry }}/{{ $repository }}:{{ $tag }}
{{- else -}}
{{ $repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/*
A per-component setting with a flat fallback: (list <map> "<component key>").
Upstream accepts both `resources.operator: {...}` and a flat `resources: {...}`; same for
securityContext and podSecurityContext.
*/}}
{{- define "keda.perComponent" -}}
{{- $all := index . 0 | default dict -}}
{{- $own := index $all (index . 1) -}}
{{- if $own -}}
{{ toYaml $own }}
{{- else if not (or (hasKey $all "operator") (hasKey $all "metricServer") (hasKey $all "webhooks")) -}}
{{ toYaml $all }}
{{- end -}}
{{- end -}}

{{/* automountServiceAccountToken of a component: (list $ "operator"|"metricServer"|"webhooks"). */}}
{{- define "keda.automountToken" -}}
{{- $ctx := index . 0 -}}
{{- $sa := index $ctx.Values.serviceAccount (index . 1) | default dict -}}
{{- if kindIs "invalid" $sa.automountServiceAccountToken -}}
{{- if kindIs "invalid" $ctx.Values.serviceAccount.automountServiceAccountToken -}}true{{- else -}}{{ $ctx.Values.serviceAccount.automountServiceAccountToken }}{{- end -}}
{{- else -}}
{{ $sa.automountServiceAccountToken }}
{{- end -}}
{{- end -}}

{{/* The pod-level settings shared by the three Deployments (placement, DNS, host settings).
Call with (dict "ctx" $ "own" <component values> "spread" <topologySpreadConstraints>). */}}
{{- define "keda.podPlacement" -}}
{{- $ctx := .ctx -}}
{{- $own := .own -}}
nodeSelector:
  kubernetes.io/os: linux
  {{- with $own.nodeSelector | default $ctx.Values.nodeSelector }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if $ctx.Values.podIdentity.gcp.enabled }}
  iam.gke.io/gke-metadata-server-enabled: "true"
  {{- end }}
{{- with $own.affinity | default $ctx.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .spread }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $own.tolerations | default $ctx.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $own.dnsConfig | default (($ctx.Values.global).dnsConfig) }}
dnsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $own.dnsPolicy }}
dnsPolicy: {{ . }}
{{- end }}
hostNetwork: {{ $own.useHostNetwork | default false }}
{{- if not (kindIs "invalid" $own.hostUsers) }}
hostUsers: {{ $own.hostUsers }}
{{- end }}
{{- with $ctx.Values.hostAliases }}
hostAliases:
  {{- toYaml . | nindent 2 }}
{{- end }}
enableServiceLinks: {{ $ctx.Values.enableServiceLinks }}
{{- end -}}

{{/* An httpGet probe: (dict "path" "/healthz" "port" 8081 "scheme" "HTTP" "timing" <values>). */}}
{{- define "keda.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
  {{- with .scheme }}
  scheme: {{ . }}
  {{- end }}
initialDelaySeconds: {{ .timing.initialDelaySeconds }}
periodSeconds: {{ .timing.periodSeconds }}
timeoutSeconds: {{ .timing.timeoutSeconds }}
failureThreshold: {{ .timing.failureThreshold }}
successThreshold: {{ .timing.successThreshold }}
{{- end -}}

{{/* Does the operator manage the TLS material itself (Secret kedaorg-certs, caBundle patching)? */}}
{{- define "keda.selfManagedCerts" -}}
{{- if and .Values.certificates.autoGenerated (not .Values.certificates.certManager.enabled) -}}true{{- end -}}
{{- end -}}

{{/* cert-manager CA injection annotation for the APIService and the webhook configuration. */}}
{{- define "keda.certManagerInjection" -}}
{{- $cm := .Values.certificates.certManager -}}
{{- if and (not $cm.generateCA) $cm.issuer.generate -}}
cert-manager.io/inject-ca-from-secret: {{ .Release.Namespace }}/{{ $cm.caSecretName }}
{{- else -}}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ .Values.operator.name }}-tls-certificates
{{- end -}}
{{- end -}}

{{/* Volumes every component mounts (the TLS Secret, optional extra CA secrets).
(dict "ctx" $ "optional" <bool>) */}}
{{- define "keda.certVolumes" -}}
- name: certificates
  secret:
    secretName: {{ .ctx.Values.certificates.secretName }}
    defaultMode: 420
    {{- if .optional }}
    optional: true
    {{- end }}
{{- with .ctx.Values.grpcTLSCertsSecret }}
- name: grpc-certs
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .ctx.Values.hashiCorpVaultTLS }}
- name: hashicorp-vault-certs
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "keda.certVolumeMounts" -}}
- name: certificates
  mountPath: {{ .Values.certificates.mountPath }}
  readOnly: true
{{- if .Values.grpcTLSCertsSecret }}
- name: grpc-certs
  mountPath: /grpccerts
  readOnly: true
{{- end }}
{{- if .Values.hashiCorpVaultTLS }}
- name: hashicorp-vault-certs
  mountPath: /hashicorp-vaultcerts
  readOnly: true
{{- end }}
{{- end -}}

{{/* The Service annotations: prometheus.io/* when metrics are exposed without a Prometheus Operator
monitor, then additionalAnnotations and service.annotations. (dict "ctx" $ "prom" <prometheus.x>) */}}
{{- define "keda.serviceAnnotations" -}}
{{- $prom := .prom -}}
{{- $ann := dict -}}
{{- if and $prom.enabled (not (or ($prom.serviceMonitor).enabled ($prom.podMonitor).enabled)) -}}
{{- $_ := set $ann "prometheus.io/scrape" "true" -}}
{{- $_ := set $ann "prometheus.io/port" ($prom.port | toString) -}}
{{- $_ := set $ann "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- range $k, $v := .ctx.Values.additionalAnnotations }}{{ $_ := set $ann $k ($v | toString) }}{{ end -}}
{{- range $k, $v := .ctx.Values.service.annotations }}{{ $_ := set $ann $k ($v | toString) }}{{ end -}}
{{- with $ann -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether a component's ServiceAccount is created: (list $ "operator"|"metricServer"|"webhooks"). */}}
{{- define "keda.createServiceAccount" -}}
{{- $ctx := index . 0 -}}
{{- $sa := index $ctx.Values.serviceAccount (index . 1) | default dict -}}
{{- if hasKey $sa "create" -}}
{{- if $sa.create }}true{{ end -}}
{{- else if hasKey $ctx.Values.serviceAccount "create" -}}
{{- if $ctx.Values.serviceAccount.create }}true{{ end -}}
{{- else -}}
true
{{- end -}}
{{- end -}}
