package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/static"
)

// staticAssets knows each embedded file's content hash, so pages link to
// /static/name?v=hash and browsers may keep such a URL for a year.
type staticAssets struct {
	hashes   map[string]string
	contents map[string][]byte // read once at start; embedded files never change
}

func newStaticAssets() (*staticAssets, error) {
	a := &staticAssets{hashes: map[string]string{}, contents: map[string][]byte{}}
	err := fs.WalkDir(static.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.FS, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a.hashes[name] = hex.EncodeToString(sum[:8])
		a.contents[name] = b
		return nil
	})
	return a, err
}

// url is the template function "static".
func (a *staticAssets) url(name string) (string, error) {
	h, ok := a.hashes[name]
	if !ok {
		return "", fmt.Errorf("static: no file %q", name)
	}
	return "/static/" + name + "?v=" + h, nil
}

// handleStatic serves the embedded files with an ETag; a URL carrying the
// current hash is immutable.
func handleStatic(a *staticAssets) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("*")
		// Only names found in the embedded tree at start are served, so
		// no path can reach anything else.
		h, ok := a.hashes[name]
		if !ok {
			return echo.ErrNotFound
		}
		w := c.Response()
		w.Header().Set("ETag", `"`+h+`"`)
		if c.QueryParam("v") == h {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=0, must-revalidate")
		}
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		http.ServeContent(w, c.Request(), name, time.Time{}, bytes.NewReader(a.contents[name]))
		return nil
	}
}
