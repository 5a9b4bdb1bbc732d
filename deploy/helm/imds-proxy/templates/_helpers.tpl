{{/* The release's full name: the release name, with the chart's name appended unless it holds it. */}}
{{- define "imds-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "imds-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "imds-proxy.labels" -}}
{{ include "imds-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "imds-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "imds-proxy.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "imds-proxy.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "imds-proxy.setupImage" -}}
{{- printf "%s:%s" .Values.setupImage.repository (.Values.setupImage.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* port: the port of a listen address (HOST:PORT, [IPv6]:PORT). */}}
{{- define "imds-proxy.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}

{{/* host: the address of a listen address, without brackets. */}}
{{- define "imds-proxy.host" -}}
{{- regexReplaceAll ":[0-9]+$" . "" | trimPrefix "[" | trimSuffix "]" -}}
{{- end -}}

{{/*
adminListen: the config's server.admin_listen, which the probes and the scrape
annotations follow. The agent's default (127.0.0.1:9180) when unset; "off"
leaves the probes nothing to ask.
*/}}
{{- define "imds-proxy.adminListen" -}}
{{- $server := .Values.config.server | default dict -}}
{{- $admin := $server.admin_listen | default "127.0.0.1:9180" -}}
{{- if eq $admin "off" -}}
{{- fail "config.server.admin_listen is off: the liveness and readiness probes ask it /healthz and /readyz; give it an address such as 0.0.0.0:9180" -}}
{{- end -}}
{{- $admin -}}
{{- end -}}

{{/* adminLoopback: "true" when the admin listener is on loopback: the probes then ask 127.0.0.1 and nothing is scraped. */}}
{{- define "imds-proxy.adminLoopback" -}}
{{- $host := include "imds-proxy.host" (include "imds-proxy.adminListen" .) -}}
{{- if or (hasPrefix "127." $host) (eq $host "::1") (eq $host "localhost") -}}true{{- end -}}
{{- end -}}

{{/* setupArgs: the arguments of `imds-proxy setup --apply` for network.mode. */}}
{{- define "imds-proxy.setupArgs" -}}
{{- $n := .Values.network -}}
- setup
- --apply
- --mode={{ $n.mode }}
{{- if eq $n.mode "address" }}
- --interface={{ $n.interface }}
- --ipv6=false
- --ecs
{{- if (.Values.config.server | default dict).pod_identity_listen }}
- --pod-identity
{{- end }}
{{- else if eq $n.mode "dnat" }}
{{- $server := .Values.config.server | default dict }}
{{- if not (or $n.podCIDRs $n.podInterfaces) }}
{{- fail "network.mode dnat: list the pods' source blocks in network.podCIDRs or their interfaces in network.podInterfaces" }}
{{- end }}
{{- if not $server.listen }}
{{- fail "network.mode dnat: config.server.listen is the rules' target; listen on the node's addresses, e.g. 0.0.0.0:8080" }}
{{- end }}
- --to=$(HOST_IP):{{ include "imds-proxy.port" (first $server.listen) }}
{{- with $server.ecs_listen }}
- --ecs-to=$(HOST_IP):{{ include "imds-proxy.port" . }}
{{- end }}
{{- with $server.pod_identity_listen }}
- --pod-identity-to=$(HOST_IP):{{ include "imds-proxy.port" (first .) }}
{{- end }}
{{- range $n.podCIDRs }}
- --cidr={{ . }}
{{- end }}
{{- range $n.podInterfaces }}
- --bridge={{ . }}
{{- end }}
{{- else }}
{{- fail (printf "network.mode %q: use address or dnat" $n.mode) }}
{{- end }}
{{- end -}}

{{/*
privilegedPorts: non-empty when a listener of the config takes a port below
1024. The agent then runs as root with NET_BIND_SERVICE as its one
capability: a non-root process loses added capabilities at exec (Kubernetes
sets no ambient capabilities). Otherwise it runs as 65532 with none.
*/}}
{{- define "imds-proxy.privilegedPorts" -}}
{{- $s := .Values.config.server | default dict -}}
{{- $addrs := concat ($s.listen | default list) ($s.pod_identity_listen | default list) (compact (list $s.ecs_listen $s.admin_listen $s.container_listen)) -}}
{{- range $addrs -}}
{{- if and (ne . "off") (lt (atoi (include "imds-proxy.port" .)) 1024) }}{{ . }} {{ end -}}
{{- end -}}
{{- end -}}

{{/*
networkSecurityContext: the network containers change the node's routing
(ip, iptables with the nft backend): root, with NET_ADMIN alone.
*/}}
{{- define "imds-proxy.networkSecurityContext" -}}
runAsUser: 0
runAsNonRoot: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
  add: ["NET_ADMIN"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
