package stream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"
	"gocloud.dev/pubsub/rabbitpubsub"
)

// RabbitURLEnv is the environment variable holding the AMQP URL of the RabbitMQ server
// (amqp://user:password@host:5672/vhost), as gocloud's rabbitpubsub reads it.
const RabbitURLEnv = "RABBIT_SERVER_URL"

// Queue is an opened queue URL: the topic the collector publishes to and the subscription(s)
// committers consume. See the package comment for the URL forms.
type Queue struct {
	url     string
	scheme  string
	name    string
	durable bool

	// mem://
	memTopic *pubsub.Topic

	// rabbit://
	pubConn, subConn *amqp.Connection

	mu struct {
		sync.Mutex
		topics []*pubsub.Topic
		subs   []*pubsub.Subscription
	}
	next atomic.Uint64
}

// rabbitPublishers is how many AMQP channels the collector publishes on at once: gocloud's
// rabbitpubsub sends one batch at a time per topic and waits for the broker's confirms, so one
// topic caps the rate at one confirm round trip per batch.
const rabbitPublishers = 4

// memTopics keeps the process's mem:// topics by name, so the collector and the committer of one
// process meet on the same topic.
var memTopics = struct {
	sync.Mutex
	m map[string]*pubsub.Topic
}{m: map[string]*pubsub.Topic{}}

// OpenQueue opens a queue URL: mem://NAME (in-process, not durable) or rabbit://NAME (RabbitMQ
// at $RABBIT_SERVER_URL; declares the durable fanout exchange NAME and the durable queue NAME
// bound to it).
func OpenQueue(ctx context.Context, rawURL string) (*Queue, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("queue URL %q: %v", rawURL, err)
	}
	name := strings.Trim(path.Join(u.Host, u.Path), "/")
	if name == "" || name == "." {
		return nil, fmt.Errorf("queue URL %q names no queue: use mem://NAME or rabbit://NAME", rawURL)
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("queue URL %q: query parameters are not supported", rawURL)
	}
	q := &Queue{url: rawURL, scheme: u.Scheme, name: name}
	switch u.Scheme {
	case "mem":
		memTopics.Lock()
		t := memTopics.m[name]
		if t == nil {
			t = mempubsub.NewTopic()
			memTopics.m[name] = t
		}
		memTopics.Unlock()
		q.memTopic = t
		return q, nil
	case "rabbit":
		q.durable = true
		server := os.Getenv(RabbitURLEnv)
		if server == "" {
			return nil, fmt.Errorf("queue %s: set %s to the RabbitMQ server, e.g. amqp://guest:guest@127.0.0.1:5672/", rawURL, RabbitURLEnv)
		}
		if q.pubConn, err = dial(server); err != nil {
			return nil, err
		}
		if q.subConn, err = dial(server); err != nil {
			q.pubConn.Close()
			return nil, err
		}
		if err := declare(q.pubConn, name); err != nil {
			q.pubConn.Close()
			q.subConn.Close()
			return nil, fmt.Errorf("queue %s: declare the exchange and queue: %w", rawURL, err)
		}
		return q, nil
	default:
		return nil, fmt.Errorf("queue URL %q: unknown scheme %q; use mem://NAME (embedded, not durable) or rabbit://NAME (RabbitMQ)", rawURL, u.Scheme)
	}
}

func dial(server string) (*amqp.Connection, error) {
	c, err := amqp.Dial(server)
	if err != nil {
		shown := server
		if p, perr := url.Parse(server); perr == nil {
			shown = p.Redacted()
		}
		return nil, fmt.Errorf("connect to RabbitMQ at %s (%s): %w", shown, RabbitURLEnv, err)
	}
	return c, nil
}

// declare creates (if missing) the durable fanout exchange name and the durable queue name bound
// to it. Declaring what exists with the same arguments is a no-op. New queues are quorum queues:
// their publisher confirms come after a batched write-ahead-log fsync (a few milliseconds),
// where a classic queue confirms persistent messages only at its periodic fsync (about 200 ms
// under steady load, measured). A queue that already exists is used as it is, classic or quorum.
func declare(conn *amqp.Connection, name string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		var aerr *amqp.Error
		if !errors.As(err, &aerr) || aerr.Code != amqp.PreconditionFailed {
			return err
		}
		// It exists with other arguments (a classic queue): the failed declare closed the
		// channel; use the queue as it is.
		if ch, err = conn.Channel(); err != nil {
			return err
		}
		defer ch.Close()
		if _, err := ch.QueueDeclarePassive(name, true, false, false, false, nil); err != nil {
			return err
		}
	}
	return ch.QueueBind(name, "", name, false, nil)
}

// URL is the queue's URL as given.
func (q *Queue) URL() string { return q.url }

// Durable reports whether the queue survives the process (rabbit://) or not (mem://).
func (q *Queue) Durable() bool { return q.durable }

// Topic returns a topic to publish to (Close shuts it down). Messages sent through it with
// BeforeSend set are persistent on RabbitMQ.
func (q *Queue) Topic() *pubsub.Topic {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.topicsLocked()[0]
}

func (q *Queue) topicsLocked() []*pubsub.Topic {
	if q.mu.topics == nil {
		if q.memTopic != nil {
			q.mu.topics = []*pubsub.Topic{q.memTopic}
		} else {
			for range rabbitPublishers {
				q.mu.topics = append(q.mu.topics, rabbitpubsub.OpenTopic(q.pubConn, q.name, nil))
			}
		}
	}
	return q.mu.topics
}

// Send publishes m on one of the queue's topics (round robin over several AMQP channels for
// RabbitMQ) and returns once the broker confirmed it. It sets m.BeforeSend to BeforeSend when m
// has none.
func (q *Queue) Send(ctx context.Context, m *pubsub.Message) error {
	q.mu.Lock()
	ts := q.topicsLocked()
	q.mu.Unlock()
	if m.BeforeSend == nil {
		m.BeforeSend = BeforeSend
	}
	return ts[q.next.Add(1)%uint64(len(ts))].Send(ctx, m)
}

// BeforeSend is a pubsub.Message.BeforeSend hook that marks RabbitMQ messages persistent, so a
// message confirmed by the broker survives a broker restart. It does nothing for mem://.
func BeforeSend(as func(any) bool) error {
	var p *amqp.Publishing
	if as(&p) && p != nil {
		p.DeliveryMode = amqp.Persistent
	}
	return nil
}

// Subscribe opens a subscription that competes with the queue's other subscribers for messages
// (RabbitMQ: a consumer of the queue, prefetching at most prefetch unacked messages; mem: one
// subscription per process, as every mem subscription receives every message).
func (q *Queue) Subscribe(ctx context.Context, prefetch int) (*pubsub.Subscription, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s *pubsub.Subscription
	if q.memTopic != nil {
		if len(q.mu.subs) > 0 {
			return nil, errors.New("mem:// queues take one committer per process; use rabbit:// for more")
		}
		s = mempubsub.NewSubscription(q.memTopic, ackDeadline)
	} else {
		opts := &rabbitpubsub.SubscriptionOptions{}
		if prefetch > 0 {
			opts.PrefetchCount = &prefetch
		}
		s = rabbitpubsub.OpenSubscription(q.subConn, q.name, opts)
	}
	q.mu.subs = append(q.mu.subs, s)
	return s, nil
}

// Close shuts the topic and the subscriptions down (flushing pending sends and acks) and closes
// the connections. For mem://, the topic stays registered in the process.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var errs []error
	for _, s := range q.mu.subs {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	q.mu.subs = nil
	if q.memTopic == nil {
		for _, t := range q.mu.topics {
			if err := t.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	q.mu.topics = nil
	for _, c := range []*amqp.Connection{q.pubConn, q.subConn} {
		if c != nil && !c.IsClosed() {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
