// Package deploy holds what running headcount in production takes, beside
// the tests that prove it: the nginx configurations (nginx/), a Caddyfile,
// the systemd unit and its environment file, and Prometheus alert rules
// (prometheus/). docs/DEPLOY.md is the guide to them. The tests run nginx
// and Caddy with the very files the guide shows, in front of two headcount
// processes on one Redis; they install nothing and skip where nginx,
// Caddy, Redis or systemd-analyze are missing, except under CI.
package deploy
