package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// A flight is the one upstream fetch of a key that every concurrent caller
// shares. The body is written to a spool file; each caller reads it with
// ReadAt as it grows, waking on new data, and the last holdback bytes are
// released only once the download is complete and verified.
type flight struct {
	ready chan struct{} // closed once the outcome below is set

	// Outcome, read-only after ready.
	kind   flightKind
	err    error          // kindErr
	status string         // kindStored: StatusHit, StatusRevalidated or StatusStale
	resp   *http.Response // kindBypass: the creator's response
	info   Info           // kindSpool: what is being downloaded
	file   *os.File       // kindSpool: the spool, written and read through one fd

	mu      sync.Mutex
	written int64
	done    bool
	doneErr error
	notify  chan struct{} // closed and replaced on every progress step
	refs    int           // readers plus the writer; the file closes at zero
}

type flightKind int

const (
	kindErr    flightKind = iota
	kindSpool             // stream the spool
	kindStored            // serve what the store holds
	kindBypass            // pass the upstream response through
)

// fetch joins or starts the key's flight and turns its outcome into a Result.
func (c *Cache) fetch(ctx context.Context, f Fetch, exp expect, cached *Info) (*Result, error) {
	c.mu.Lock()
	fl, joined := c.flights[f.Key]
	if !joined {
		// One reference for the writer, dropped only after the flight left
		// the map, so a joiner always finds the spool open.
		fl = &flight{ready: make(chan struct{}), notify: make(chan struct{}), refs: 1}
		c.flights[f.Key] = fl
		c.bg.Add(1)
		go c.run(context.WithoutCancel(ctx), fl, f, exp, cached)
	}
	fl.mu.Lock()
	fl.refs++
	fl.mu.Unlock()
	c.mu.Unlock()

	select {
	case <-fl.ready:
	case <-ctx.Done():
		fl.release()
		if !joined {
			go func() { // nobody else may take the creator's response
				<-fl.ready
				if fl.kind == kindBypass {
					fl.resp.Body.Close()
				}
			}()
		}
		return nil, fmt.Errorf("cache: %w", ctx.Err())
	}

	if fl.kind != kindSpool {
		fl.release()
	}
	switch fl.kind {
	case kindSpool:
		c.misses.Add(1)
		return &Result{Body: &spoolReader{ctx: ctx, fl: fl}, Info: fl.info, Status: StatusMiss}, nil
	case kindStored:
		rc, info, err := c.store.Get(ctx, f.Key)
		if err != nil {
			return nil, fmt.Errorf("cache: %q: %w", f.Key, err)
		}
		switch fl.status {
		case StatusStale:
			c.stale.Add(1)
		case StatusRevalidated:
			c.revalidated.Add(1)
		default:
			c.hits.Add(1)
		}
		c.touch(f.Key)
		return &Result{Body: c.verify(rc, info), Info: info, Status: fl.status}, nil
	case kindBypass:
		c.bypass.Add(1)
		if !joined {
			return &Result{Body: fl.resp.Body, Status: StatusBypass, Upstream: fl.resp}, nil
		}
		// The creator owns that response; a follower asks for its own.
		resp, err := f.Do(ctx, http.Header{})
		if err != nil {
			return nil, fmt.Errorf("cache: upstream: %w", err)
		}
		return &Result{Body: resp.Body, Status: StatusBypass, Upstream: resp}, nil
	}
	return nil, fl.err
}

// run performs the upstream request and settles the flight.
func (c *Cache) run(ctx context.Context, fl *flight, f Fetch, exp expect, cached *Info) {
	defer c.bg.Done()
	finish := func() {
		c.mu.Lock()
		delete(c.flights, f.Key)
		c.mu.Unlock()
		fl.release()
	}
	settle := func(k flightKind) {
		fl.kind = k
		close(fl.ready)
	}

	// A caller that missed the store just before the previous flight for
	// this key stored its result and left the map must not fetch again.
	if info, err := c.store.Stat(ctx, f.Key); err == nil && now().Before(c.expiry(info, f)) && !exp.contradicts(info) {
		fl.status = StatusHit
		settle(kindStored)
		finish()
		return
	}

	h := http.Header{}
	if cached != nil {
		if v := cached.Header.Get("ETag"); v != "" {
			h.Set("If-None-Match", v)
		}
		if v := cached.Header.Get("Last-Modified"); v != "" {
			h.Set("If-Modified-Since", v)
		}
	}
	resp, err := f.Do(ctx, h)
	staleOK := cached != nil && c.opts.StaleIfError > 0 &&
		now().Before(c.expiry(*cached, f).Add(c.opts.StaleIfError))
	switch {
	case err != nil || resp.StatusCode >= 500:
		c.upstreamFail.Add(1)
		if err == nil && !staleOK {
			fl.resp = resp
			settle(kindBypass)
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if staleOK {
			fl.status = StatusStale
			settle(kindStored)
			break
		}
		fl.err = fmt.Errorf("cache: upstream: %w", err)
		settle(kindErr)
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		resp.Body.Close()
		c.refresh(ctx, *cached, resp.Header)
		fl.status = StatusRevalidated
		settle(kindStored)
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound:
		file, err := os.CreateTemp(c.opts.SpoolDir, "spool-*")
		if err != nil {
			// Cannot spool: still serve the client, uncached.
			c.log.Error("cache: spool", "err", err)
			fl.resp = resp
			settle(kindBypass)
			break
		}
		fl.file = file
		fl.info = Info{Key: f.Key, Size: resp.ContentLength, Header: filterHeader(resp.Header),
			Status: resp.StatusCode, StoredAt: now()}
		settle(kindSpool)
		if resp.StatusCode != http.StatusOK {
			exp = expect{} // the digest is the artifact's, not a 404 page's
		}
		c.download(ctx, fl, f, exp, resp)
	default:
		fl.resp = resp
		settle(kindBypass)
	}
	finish()
}

// download copies the upstream body into the spool, publishing progress,
// verifies it, releases the readers and stores it.
func (c *Cache) download(ctx context.Context, fl *flight, f Fetch, exp expect, resp *http.Response) {
	defer resp.Body.Close()
	path := fl.file.Name()
	defer os.Remove(path) // no-op once the store has moved it

	// Digests are computed by a second goroutine from chunks already on
	// disk: readers wait only for the spool, and the digests matter only
	// at the end (hashing twice is most of a download's CPU).
	hs := newHashes(exp)
	const chunks = 4
	free, full, hashed := make(chan []byte, chunks), make(chan []byte, chunks), make(chan struct{})
	for range chunks {
		free <- make([]byte, 64<<10)
	}
	go func() {
		defer close(hashed)
		for b := range full {
			hs.write(b)
			free <- b[:cap(b)]
		}
	}()
	var n int64
	var err error
	for {
		buf := <-free
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if _, werr := fl.file.Write(buf[:k]); werr != nil {
				err = fmt.Errorf("cache: spool: %w", werr)
				break
			}
			n += int64(k)
			fl.progress(n, false, nil)
			full <- buf[:k]
		} else {
			free <- buf
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = fmt.Errorf("cache: upstream body: %w", rerr)
			break
		}
	}
	close(full)
	<-hashed
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("cache: upstream body: got %d bytes, want %d: %w", n, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	if err == nil && !hs.matches() {
		c.corrupt.Add(1)
		err = fmt.Errorf("cache: %q does not match the published digest %s: %w", f.Key, f.Expect, ErrIntegrity)
	}
	if err == nil {
		err = fl.file.Sync()
	}
	if err != nil {
		c.log.Warn("cache: download failed", "key", f.Key, "err", err)
		fl.progress(n, true, err)
		return
	}
	fl.progress(n, true, nil) // readers get the final bytes now

	info := fl.info
	info.Size, info.SHA256 = n, hex.EncodeToString(hs.sha256.Sum(nil))
	if fs, ok := c.store.(FileSaver); ok {
		info, err = fs.SaveFile(ctx, f.Key, path, info)
	} else {
		info, err = c.store.Save(ctx, f.Key, io.NewSectionReader(fl.file, 0, n), info)
	}
	if err != nil {
		c.log.Error("cache: save failed", "key", f.Key, "err", err)
		return
	}
	c.remember(f.Key, info.Size)
	c.evict(ctx)
}

// refresh records a successful revalidation: new StoredAt and validators.
func (c *Cache) refresh(ctx context.Context, info Info, h http.Header) {
	info.Header = info.Header.Clone()
	if info.Header == nil {
		info.Header = http.Header{}
	}
	for _, k := range []string{"ETag", "Last-Modified"} {
		if v := h.Get(k); v != "" {
			info.Header.Set(k, v)
		}
	}
	info.StoredAt = now()
	var err error
	if is, ok := c.store.(InfoSetter); ok {
		err = is.SetInfo(ctx, info.Key, info)
	} else {
		var rc io.ReadCloser
		if rc, _, err = c.store.Get(ctx, info.Key); err == nil {
			_, err = c.store.Save(ctx, info.Key, rc, info)
			rc.Close()
		}
	}
	if err != nil {
		c.log.Error("cache: refresh failed", "key", info.Key, "err", err)
	}
}

func (fl *flight) progress(n int64, done bool, err error) {
	fl.mu.Lock()
	fl.written, fl.done, fl.doneErr = n, done, err
	close(fl.notify)
	fl.notify = make(chan struct{})
	fl.mu.Unlock()
}

func (fl *flight) release() {
	fl.mu.Lock()
	fl.refs--
	last := fl.refs == 0
	fl.mu.Unlock()
	if last && fl.file != nil {
		fl.file.Close()
	}
}

// spoolReader streams a flight's spool to one caller.
type spoolReader struct {
	ctx    context.Context
	fl     *flight
	off    int64
	closed bool
}

func (r *spoolReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("cache: read after close")
	}
	for {
		r.fl.mu.Lock()
		w, done, derr, ch := r.fl.written, r.fl.done, r.fl.doneErr, r.fl.notify
		r.fl.mu.Unlock()
		if derr != nil {
			return 0, derr
		}
		avail := w - r.off
		if !done {
			avail -= holdback // the final chunk waits for verification
		}
		if avail > 0 {
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, err := r.fl.file.ReadAt(p, r.off)
			r.off += int64(n)
			if err == io.EOF && n > 0 {
				err = nil
			}
			return n, err
		}
		if done {
			return 0, io.EOF
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *spoolReader) Close() error {
	if !r.closed {
		r.closed = true
		r.fl.release()
	}
	return nil
}
