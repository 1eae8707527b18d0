// Package certwatch serves a TLS certificate from PEM files and takes up a
// renewed one without a restart: when told to (SIGHUP) or when the files
// change on disk. A renewal that does not load (half written, a key that
// does not match) is logged and the certificate in use stays.
package certwatch

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// PollInterval is how often Run looks at the files for a change.
const PollInterval = 2 * time.Second

// Watcher holds the certificate of a pair of PEM files. Its methods are
// safe for concurrent use.
type Watcher struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu    sync.Mutex // serialises loads
	stamp string     // the files' sizes and times at the last load, or failed try
}

// New loads certFile and keyFile (HEADCOUNT_TLS_CERT, HEADCOUNT_TLS_KEY);
// an error names the variables.
func New(certFile, keyFile string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{certFile: certFile, keyFile: keyFile, log: log}
	if err := w.Reload(); err != nil {
		return nil, fmt.Errorf("HEADCOUNT_TLS_CERT, HEADCOUNT_TLS_KEY: %w", err)
	}
	return w, nil
}

// GetCertificate is tls.Config.GetCertificate: the certificate loaded last.
func (w *Watcher) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return w.cert.Load(), nil
}

// Current returns a function that gives w's certificate in use, for a
// client that must accept exactly the certificate this server serves; nil
// when w is nil (no TLS).
func Current(w *Watcher) func() *tls.Certificate {
	if w == nil {
		return nil
	}
	return w.cert.Load
}

// Reload loads the files again. On an error the certificate in use stays.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Taken whatever comes of the load: files that fail to load are not
	// tried (and logged) again every PollInterval, only once they change
	// again, or on SIGHUP.
	w.stamp = w.stampNow()
	cert, err := tls.LoadX509KeyPair(w.certFile, w.keyFile)
	if err != nil {
		return err
	}
	w.cert.Store(&cert)
	return nil
}

// stampNow sums up the files' sizes and modification times; a change of
// either file, or of a symlink's target (stat follows it), changes it.
func (w *Watcher) stampNow() string {
	s := ""
	for _, f := range []string{w.certFile, w.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			s += "missing;"
			continue
		}
		s += fmt.Sprintf("%d@%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s
}

// changed reports whether the files differ from what was last loaded or tried.
func (w *Watcher) changed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stampNow() != w.stamp
}

// Run reloads on every value from reload (the program's SIGHUP) and when
// the files change, until ctx is done.
func (w *Watcher) Run(ctx context.Context, reload <-chan os.Signal) {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		why := ""
		select {
		case <-ctx.Done():
			return
		case <-reload:
			why = "SIGHUP"
		case <-tick.C:
			if !w.changed() {
				continue
			}
			why = "the files changed"
		}
		if err := w.Reload(); err != nil {
			w.log.Error("TLS certificate not reloaded; the one in use stays", "reason", why, "cert", w.certFile, "key", w.keyFile, "err", err)
			continue
		}
		w.log.Info("TLS certificate reloaded", "reason", why, "cert", w.certFile, "not_after", w.cert.Load().Leaf.NotAfter)
	}
}

// ServerConfig is headcount's TLS configuration: TLS 1.2 or later, with
// only forward-secret AEAD cipher suites for 1.2 (1.3's are all such),
// and the certificate from w. net/http adds HTTP/2 to it.
func ServerConfig(w *Watcher) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: w.GetCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}
