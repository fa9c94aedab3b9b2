// Package config holds the configuration of `trustgate serve`: the
// structure, its embedded defaults (SPEC "Embedded defaults"), loading from
// a YAML file and the environment (TRUSTGATE_<KEY>), and a pure Validate
// that lists every problem at once. Flags are applied by the command on top
// of what Load returns, so precedence is flags > environment > file >
// defaults.
package config
