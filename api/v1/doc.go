// Package v1 holds the JSON wire types of trustgate's HTTP API v1 (SPEC
// "HTTP API v1"), shared by the server, the agent, the CLI and third-party
// clients. It imports the standard library only.
package v1
