package train

// Exp exposes exp to the tests.
var Exp = exp
