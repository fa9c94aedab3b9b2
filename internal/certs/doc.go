// Package certs obtains AMD endorsement key certificates. This version is a
// plain client of the AMD Key Distribution Service (KDS, VCEK spec 57230
// ch. 4) behind snp.KeySource; caching, rate limiting and revocation come
// on top of it.
package certs
