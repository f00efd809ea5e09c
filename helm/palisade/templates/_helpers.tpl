{{/* Name of the release's objects: the release name, with "palisade" added unless it has it. */}}
{{- define "palisade.fullname" -}}
{{- if contains "palisade" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-palisade" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; pass (dict "ctx" $ "component" "agent"). */}}
{{- define "palisade.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "palisade.selectorLabels" . }}
{{- end -}}

{{- define "palisade.selectorLabels" -}}
app.kubernetes.io/name: palisade
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "palisade.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Fixed host paths, shared by the agent, its install step and the uninstall cleanup. */}}
{{- define "palisade.conflistName" -}}05-palisade.conflist{{- end -}}
{{- define "palisade.pinDir" -}}/sys/fs/bpf/palisade{{- end -}}
{{- define "palisade.stateDir" -}}/var/lib/palisade{{- end -}}
{{- define "palisade.runDir" -}}/run/palisade{{- end -}}
{{- define "palisade.cniSocket" -}}/run/palisade/cni.sock{{- end -}}
{{/* Datapath route protocol number (datapath/iproute.ts PALISADE_ROUTE_PROTO). */}}
{{- define "palisade.routeProto" -}}231{{- end -}}
{{/* The name in the agents' shared certificate, which the flow API checks (flows-api --agent-server-name). */}}
{{- define "palisade.agentServerName" -}}palisade-agent{{- end -}}

{{- define "palisade.flowsApiService" -}}{{ include "palisade.fullname" . }}-flows-api{{- end -}}

{{/*
The chart's PKI and the flow token, computed once per render and shared by
every template through .Values.__pki. Kept across upgrades: when the three
Secrets exist (lookup; nothing is found by `helm template`), their data is
reused, so an upgrade neither changes the APIService's caBundle nor restarts
pods for new certificates. Otherwise a new CA signs new certificates (the CA
key is not stored: nothing else is ever signed with it). The token is reused
whenever its Secret exists.
*/}}
{{- define "palisade.pki" -}}
{{- if not (hasKey .Values "__pki") -}}
{{- $fullname := include "palisade.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $api := lookup "v1" "Secret" $ns (printf "%s-flows-api-tls" $fullname) -}}
{{- $agent := lookup "v1" "Secret" $ns (printf "%s-agent-tls" $fullname) -}}
{{- $token := lookup "v1" "Secret" $ns (printf "%s-flows-token" $fullname) -}}
{{- $pki := dict -}}
{{- if and $api $agent $api.data $agent.data (index $api.data "ca.crt") (eq (index $api.data "ca.crt") (index $agent.data "ca.crt" | default "")) -}}
{{- $_ := set $pki "ca" (index $api.data "ca.crt") -}}
{{- $_ := set $pki "apiCert" (index $api.data "tls.crt") -}}
{{- $_ := set $pki "apiKey" (index $api.data "tls.key") -}}
{{- $_ := set $pki "agentCert" (index $agent.data "tls.crt") -}}
{{- $_ := set $pki "agentKey" (index $agent.data "tls.key") -}}
{{- else -}}
{{- $days := int .Values.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $fullname) $days -}}
{{- $svc := include "palisade.flowsApiService" . -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) -}}
{{- $apiCert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names $days $ca -}}
{{- $agentCert := genSignedCert (include "palisade.agentServerName" .) nil (list (include "palisade.agentServerName" .)) $days $ca -}}
{{- $_ := set $pki "ca" ($ca.Cert | b64enc) -}}
{{- $_ := set $pki "apiCert" ($apiCert.Cert | b64enc) -}}
{{- $_ := set $pki "apiKey" ($apiCert.Key | b64enc) -}}
{{- $_ := set $pki "agentCert" ($agentCert.Cert | b64enc) -}}
{{- $_ := set $pki "agentKey" ($agentCert.Key | b64enc) -}}
{{- end -}}
{{- if and $token $token.data (index $token.data "token") -}}
{{- $_ := set $pki "token" (index $token.data "token") -}}
{{- else -}}
{{- $_ := set $pki "token" (randAlphaNum 64 | b64enc) -}}
{{- end -}}
{{- $_ := set .Values "__pki" $pki -}}
{{- end -}}
{{- end -}}

{{/* Checks what the schema cannot express; fails the render naming the value. */}}
{{- define "palisade.validate" -}}
{{- $le := .Values.operator.leaderElection -}}
{{- if ge (float64 $le.renewDeadlineSeconds) (float64 $le.leaseDurationSeconds) -}}
{{- fail (printf "operator.leaderElection.renewDeadlineSeconds (%v) must be shorter than operator.leaderElection.leaseDurationSeconds (%v)" $le.renewDeadlineSeconds $le.leaseDurationSeconds) -}}
{{- end -}}
{{- if and .Values.flowsApi.enabled (not .Values.flowsApi.requestheader.clientCA) (ne .Release.Namespace "kube-system") -}}
{{- fail (printf "flowsApi.requestheader.clientCA is required when the release is not in kube-system (it is in %s): only a pod in kube-system can mount kube-apiserver's front-proxy CA from the ConfigMap extension-apiserver-authentication; give that CA's PEM, or install with -n kube-system" .Release.Namespace) -}}
{{- end -}}
{{- if and .Values.flowsApi.enabled (eq (int .Values.agent.metrics.port) (int .Values.agent.flows.port)) -}}
{{- fail (printf "agent.flows.port and agent.metrics.port are both %v: both listen on the node address" .Values.agent.flows.port) -}}
{{- end -}}
{{- end -}}
