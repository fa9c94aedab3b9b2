// Package app is trustgate's composition root: it builds the verifier from
// a validated config.Config, serves the HTTP API, watches policy and
// reference-value files, and shuts down gracefully. Nothing imports it but
// cmd/.
package app
