// Package auth holds who a request belongs to: the app session cookie, the
// short-lived OAuth state cookie and bearer tokens for command-line clients.
// It knows nothing of HTTP routing; handlers decide where each is used.
package auth

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// DeriveKey turns the one configured secret into an independent key of n
// bytes for each purpose, so that a value made for one use (say a session
// cookie) can never be accepted as another (a token, an OAuth state, a
// shared sign-out). n is at most 64.
func DeriveKey(secret []byte, purpose string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "headcount "+purpose, n)
	if err != nil {
		// Only an n beyond 255*32 bytes fails; every caller asks for ≤ 64.
		panic("auth: " + err.Error())
	}
	return k
}
