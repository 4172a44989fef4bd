package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter keeps one token bucket per client address. Idle buckets are swept once the map
// grows past sweepAt, so memory stays bounded by the number of recently active clients.
type ipLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu struct {
		sync.Mutex
		buckets   map[string]*bucket
		lastSweep time.Time
	}
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	sweepAt   = 10000
	idleAfter = time.Minute
)

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	l := &ipLimiter{limit: rate.Limit(perSecond), burst: burst, now: now}
	l.mu.buckets = map[string]*bucket{}
	return l
}

// allow takes one token for ip; when there is none it says how long until there is.
func (l *ipLimiter) allow(ip string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.mu.buckets[ip]
	if b == nil {
		if len(l.mu.buckets) >= sweepAt {
			l.sweepLocked(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.mu.buckets[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *ipLimiter) sweepLocked(now time.Time) {
	if now.Sub(l.mu.lastSweep) < time.Second {
		return
	}
	l.mu.lastSweep = now
	for ip, b := range l.mu.buckets {
		if now.Sub(b.seen) > idleAfter {
			delete(l.mu.buckets, ip)
		}
	}
}
