package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// TLSCert and TLSKey are PEM files; with both set the server speaks HTTPS only.
	TLSCert, TLSKey string
	// ShutdownTimeout bounds the graceful shutdown (default 10 s): in-flight requests finish,
	// then the listener closes.
	ShutdownTimeout time.Duration
	// Logger gets the http.Server's errors; nil discards.
	Logger *slog.Logger
}

// NewHTTPServer returns an http.Server for h with explicit timeouts: 5 s to read the headers,
// 30 s for the whole request, 30 s to write the answer, 120 s idle keep-alive, 64 KiB of headers.
func NewHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops accepting, lets
// in-flight requests finish (at most ShutdownTimeout) and returns. It returns nil after a
// graceful shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opts *ServeOptions) error {
	var o ServeOptions
	if opts != nil {
		o = *opts
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("server: give both a TLS certificate and a key, or neither")
	}
	srv := NewHTTPServer(h, o.Logger)
	errc := make(chan error, 1)
	go func() {
		if o.TLSCert != "" {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
