// Package client is a Go client of trustgate's HTTP API v1, for the guest
// agent, the CLI and third parties.
package client
