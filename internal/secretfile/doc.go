// Package secretfile holds the one rule for files that keep a verifier's
// secrets (the nonce and token keys, the resource store): they are
// accessible by their owner only, no group or other permission bit, or
// they are refused. The one exception is a Kubernetes Secret volume, whose
// files the kubelet gives to root and to the pod's fsGroup: there, read by
// the verifier's own non-root group is accepted too (CheckMounted).
package secretfile
