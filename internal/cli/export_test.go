package cli

// EnvOf is envOf for the external tests.
var EnvOf = envOf
