// Package deploy holds the tests of what operators deploy: the container
// image (Dockerfile, scripts/image), the local multi-replica setup
// (deploy/local), the systemd unit (deploy/systemd) and the Prometheus
// alert rules (deploy/prometheus). The Kubernetes manifests are tested by
// their own module, deploy/kubernetes/test.
package deploy
