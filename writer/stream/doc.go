// Package stream is the queue committer of `lake serve` and `lake commit-stream`: it consumes
// events from a gocloud.dev/pubsub subscription in micro-batches, standardises and quarantines
// them with package writer/source exactly as files are, commits each batch to the table, and only
// then acknowledges the batch's messages.
//
// # Exactly once
//
// Each batch is committed with a txn action (appId = the committer's name, version = the batch
// sequence, which continues from the version the table already records for that appId), and the
// messages are acked only after the commit returned. A crash before the commit loses nothing (the
// queue redelivers); a crash after the commit and before the acks would write the events twice,
// so the committer de-duplicates by event_id: on start it reads the event_ids of the data files
// added by the last Options.LookbackCommits stream commits (its own and other committers', found
// by the "committer" operation parameter they record), and it keeps the ids it committed since
// in a bounded set (Options.RecentIDs). When a batch holds a message the queue marks as
// redelivered (RabbitMQ), it first reads the stream commits made since it last looked, so a
// message that a crashed committer had committed and another committer now receives is dropped
// too. Every event the collector queues carries an event_id (a UUIDv7 given before publishing),
// so a redelivered message keeps its id.
//
// The guarantee holds for a durable queue (RabbitMQ: rabbit://). The embedded mem:// queue lives
// in the process: what is in it when the process dies is lost.
//
// Limits, by design: de-duplication looks back Options.LookbackCommits commits and
// Options.LookbackVersions table versions; a message redelivered after more commits than that
// (hours of backlog behind it) is not recognised. Two committers must not share a name: the
// second one's commit conflicts (same appId) and it stops with ErrNameInUse.
//
// # Queue URLs
//
// OpenSubscription and OpenTopic take one URL for both ends:
//
//   - mem://NAME: in-process topic and subscription (the embedded default; not durable).
//   - rabbit://NAME: RabbitMQ at $RABBIT_SERVER_URL; the topic is the fanout exchange NAME, the
//     subscription the durable queue NAME bound to it. Both are declared (idempotently) when
//     opened, so `lake serve --queue rabbit://lake-events` works on an empty broker. Messages are
//     published persistent... by the broker's policy: declare the queue durable and publish
//     through the exchange with publisher confirms (gocloud's rabbitpubsub waits for them).
//
// # Concurrency
//
// A Committer is used by one Run at a time. Several committers with different names may consume
// one queue into one table: their commits are blind appends that rebase on each other.
package stream
