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
// too. Quarantined events count as well: their ids are read from the raw records in the
// quarantine table's stream commits. Every event the collector queues carries an event_id (a
// UUIDv7 given before publishing), so a redelivered message keeps its id; a message without one
// (published by another program) cannot be told from a new one.
//
// The batch sequence starts one past the largest version the table or its quarantine table
// records for the name: the quarantine table is committed first, and a batch after a restart
// holds other messages than the one that crashed, so reusing that version would make the sink
// skip the new batch's quarantined rows.
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
// OpenQueue takes one URL for both ends:
//
//   - mem://NAME: an in-process topic and subscription (the embedded default of `lake serve`).
//     Not durable: events queued but not yet committed die with the process. One committer per
//     process (every mem subscription would receive every message).
//   - rabbit://NAME: RabbitMQ at $RABBIT_SERVER_URL (amqp://user:password@host:5672/vhost). NAME
//     is the durable fanout exchange the collector publishes to and the durable queue bound to it
//     that the committers share (competing consumers). Both are declared, idempotently, when the
//     queue is opened, so `lake serve --queue rabbit://lake-events` works on an empty broker; a new
//     queue is a quorum queue (fast, fsynced publisher confirms), an existing one is used as it is.
//     Messages are published persistent (BeforeSend) and Send returns only after the broker's
//     publisher confirm, so an event the collector acknowledged survives a broker restart. The
//     collector publishes on several AMQP channels at once (Queue.Send round-robins them). A lost
//     connection to the broker ends Run with an error: run the committer under a supervisor.
//
// # Concurrency
//
// A Committer is used by one Run at a time. Run receives on one goroutine and commits on
// another; a batch is committed while the next one is being received (at most BatchRows messages
// wait in between, plus the broker's prefetch). Several committers with different names may
// consume one queue into one table: their commits are blind appends that rebase on each other.
//
// # Errors
//
// ErrNameInUse: another committer with the same name committed meanwhile. Other commit failures
// are retried (retryable conflicts, unknown outcomes, storage errors: up to 8 times, backing off
// to 5 s); when they persist, Run nacks the batch and returns the error.
package stream
