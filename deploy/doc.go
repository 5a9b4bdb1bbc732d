// Package deploy holds the Kubernetes deployment of imds-proxy, not code:
// the Helm chart (helm/imds-proxy) and the plain manifests rendered from it
// (kubernetes/imds-proxy.yaml). Its tests render the chart with helm and
// check what it would apply.
package deploy
