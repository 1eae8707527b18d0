// Package e2e tests headcount as its users use it: the whole server runs
// in-process on a loopback port, and real clients drive it: headless
// Chromium through chromedp, the curl binary, and Node with the npm
// eventsource package. Sign-in goes through the real goth GitHub provider,
// against the fake GitHub of internal/fakegithub or the built-in dev
// provider.
//
// The package holds tests only. A missing tool skips its tests with the
// command that installs it, except under CI=true, where it fails them.
// TestScreenshots writes the pictures in docs/screenshots when
// HEADCOUNT_SCREENSHOTS names a directory (go tool task screenshots).
package e2e
