package s3

// ExpiryClass exposes expiryClass to the tests.
var ExpiryClass = expiryClass
