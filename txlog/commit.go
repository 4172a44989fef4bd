package txlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// IsolationLevel is the isolation a transaction asks for. WriteSerializable (Delta's default)
// lets blind appends of other writers pass files this transaction read; Serializable does not.
type IsolationLevel string

const (
	WriteSerializable IsolationLevel = "WriteSerializable"
	Serializable      IsolationLevel = "Serializable"
)

// TxnOptions describe a transaction for its commitInfo and conflict checks.
type TxnOptions struct {
	Operation           string         // e.g. "WRITE", "CREATE TABLE", "OPTIMIZE"
	OperationParameters map[string]any // written as given
	OperationMetrics    map[string]any
	Isolation           IsolationLevel // default WriteSerializable
	UserMetadata        string
}

// Transaction collects the actions of one commit against the snapshot it read.
//
// # Concurrency
//
// A Transaction is used by one goroutine.
type Transaction struct {
	log      *Log
	read     *Snapshot
	opts     TxnOptions
	actions  []Action
	protocol *Protocol
	metadata *Metadata
	// What the transaction depends on, for conflict checks.
	readAll   bool
	readPred  []func(partitionValues map[string]*string) bool
	readFiles map[string]bool
	committed bool
}

// NewTransaction starts a transaction that reads snapshot read (nil for a new table).
func (l *Log) NewTransaction(read *Snapshot, opts *TxnOptions) *Transaction {
	t := &Transaction{log: l, read: read, readFiles: map[string]bool{}}
	if opts != nil {
		t.opts = *opts
	}
	if t.opts.Isolation == "" {
		t.opts.Isolation = WriteSerializable
	}
	if t.opts.Operation == "" {
		t.opts.Operation = "WRITE"
	}
	return t
}

// ReadVersion is the version the transaction read, -1 for a new table.
func (t *Transaction) ReadVersion() int64 {
	if t.read == nil {
		return -1
	}
	return t.read.version
}

// SetProtocol sets the protocol action of the commit.
func (t *Transaction) SetProtocol(p Protocol) { t.protocol = &p }

// SetMetadata sets the metaData action of the commit.
func (t *Transaction) SetMetadata(m Metadata) { t.metadata = &m }

// AddActions appends add, remove, txn, cdc or domainMetadata actions.
func (t *Transaction) AddActions(actions ...Action) {
	for _, a := range actions {
		if a.Remove != nil {
			t.readFiles[FileKey(a.Remove.Path, a.Remove.DeletionVector)] = true
		}
	}
	t.actions = append(t.actions, actions...)
}

// SetAppTransaction records that application appID has committed version: Snapshot
// AppTransactionVersion reads it back after the commit. Two transactions for one appID conflict.
func (t *Transaction) SetAppTransaction(appID string, version int64) {
	now := t.log.opts.Now().UnixMilli()
	t.actions = append(t.actions, Action{Txn: &Txn{AppID: appID, Version: version, LastUpdated: &now}})
}

// ReadWholeTable records that the transaction's outcome depends on every file of the table.
func (t *Transaction) ReadWholeTable() { t.readAll = true }

// ReadPartitions records that the transaction read the files whose partition values match pred.
func (t *Transaction) ReadPartitions(pred func(partitionValues map[string]*string) bool) {
	t.readPred = append(t.readPred, pred)
}

// ReadFile records that the transaction read one file (by FileKey).
func (t *Transaction) ReadFile(key string) { t.readFiles[key] = true }

// isBlindAppend: the transaction only adds files and read nothing.
func (t *Transaction) isBlindAppend() bool {
	if t.readAll || len(t.readPred) > 0 || len(t.readFiles) > 0 {
		return false
	}
	for _, a := range t.actions {
		if a.Remove != nil || (a.Add != nil && !a.Add.DataChange) {
			return false
		}
	}
	return true
}

// Commit writes the transaction as the next version and returns it.
//
// It creates _delta_log/<version>.json with put-if-absent. When another writer took the version,
// it reads the winning commits and checks them against what this transaction read and wrote: a
// change of protocol or metadata, a txn for the same appId, or a removal of a file this
// transaction read or removes is a terminal *ConflictError; otherwise the transaction is rebased
// onto the winner and tried at the next version, after a jittered backoff, up to
// LogOptions.MaxCommitAttempts times. When the store cannot say whether the put landed, the file
// is read back and its commitInfo.txnId compared with this transaction's.
func (t *Transaction) Commit(ctx context.Context) (int64, error) {
	if t.committed {
		return -1, errors.New("txlog: transaction already committed")
	}
	if t.read != nil {
		schema := t.read.schema
		p := t.read.protocol
		if t.protocol != nil {
			p = *t.protocol
		}
		if err := p.CheckWrite(schema); err != nil {
			return -1, err
		}
		if t.read.protocol.HasWriterFeature("appendOnly") && t.read.metadata.Configuration["delta.appendOnly"] == "true" {
			for _, a := range t.actions {
				if a.Remove != nil && a.Remove.DataChange {
					return -1, fmt.Errorf("table is append-only (delta.appendOnly=true): this operation would delete data from %s", a.Remove.Path)
				}
			}
		}
	} else if t.protocol == nil || t.metadata == nil {
		return -1, errors.New("txlog: a new table's first commit needs a protocol and metaData")
	}
	txnID := uuid.NewString()
	version := t.ReadVersion() + 1
	blind := t.isBlindAppend()
	backoff := 2 * time.Millisecond
	failedPuts := 0
	for attempt := 1; ; attempt++ {
		data, err := t.encode(version, txnID, blind)
		if err != nil {
			return -1, err
		}
		err = t.log.commits.PutIfAbsent(ctx, CommitKey(version), data)
		if err != nil && !errors.Is(err, ErrVersionExists) {
			// Unknown outcome: settle it by reading the file back.
			won, exists, rerr := t.settle(ctx, version, txnID)
			switch {
			case rerr != nil:
				return -1, &CommitUnknownError{Version: version, Err: errors.Join(err, rerr)}
			case won:
				err = nil
			case !exists:
				// The put did not land: retry the same version a few times, then give up.
				failedPuts++
				if failedPuts >= 3 {
					return -1, fmt.Errorf("txlog: commit %d failed and nothing was written: %w", version, err)
				}
				err = ErrVersionExists
			default:
				err = ErrVersionExists
			}
		}
		if err == nil {
			t.committed = true
			t.postCommit(ctx, version)
			return version, nil
		}
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		// Lost the race: check the winners and rebase.
		next, cerr := t.checkWinners(ctx, version)
		if cerr != nil {
			return -1, cerr
		}
		if attempt >= t.log.opts.MaxCommitAttempts {
			return -1, &ConflictError{Version: next - 1, Kind: ConflictRetriesExhausted}
		}
		version = next
		// The winners were just read, so the next version is likely free: the first retry goes
		// at once; later ones wait a jittered, doubling backoff so that many writers spread out.
		if attempt > 1 {
			timer := time.NewTimer(jitter(backoff))
			select {
			case <-ctx.Done():
				timer.Stop()
				return -1, ctx.Err()
			case <-timer.C:
			}
			backoff = min(backoff*2, 250*time.Millisecond)
		}
	}
}

// settle reads back version's commit after an unknown put outcome: won is true when it holds this
// transaction's txnId. When no file exists, the put did not land and the caller retries the
// same version by reporting a lost race (the winner check then sees no winner).
func (t *Transaction) settle(ctx context.Context, version int64, txnID string) (won, exists bool, err error) {
	acts, err := readCommit(ctx, t.log.bucket, CommitKey(version))
	if err != nil {
		if isNotFound(err) {
			return false, false, nil
		}
		return false, false, err
	}
	for _, a := range acts {
		if a.CommitInfo != nil {
			return a.CommitInfo.TxnID == txnID, true, nil
		}
	}
	return false, true, nil
}

// checkWinners reads the commits from version up to the newest and checks each against this
// transaction. It returns the next version to try.
func (t *Transaction) checkWinners(ctx context.Context, version int64) (int64, error) {
	for v := version; ; v++ {
		acts, err := readCommit(ctx, t.log.bucket, CommitKey(v))
		if err != nil {
			if isNotFound(err) {
				return v, nil
			}
			return -1, err
		}
		if err := t.conflicts(v, acts); err != nil {
			return -1, err
		}
	}
}

// conflicts applies Delta's conflict rules to one winning commit.
func (t *Transaction) conflicts(v int64, winner []Action) error {
	winnerBlind := false
	for _, a := range winner {
		if a.CommitInfo != nil && a.CommitInfo.IsBlindAppend != nil {
			winnerBlind = *a.CommitInfo.IsBlindAppend
		}
	}
	myTxns := map[string]bool{}
	myRemoves := map[string]bool{}
	for _, a := range t.actions {
		if a.Txn != nil {
			myTxns[a.Txn.AppID] = true
		}
		if a.Remove != nil {
			myRemoves[FileKey(a.Remove.Path, a.Remove.DeletionVector)] = true
		}
	}
	var paths []string
	var kind ConflictKind
	for _, a := range winner {
		switch {
		case a.Protocol != nil:
			return &ConflictError{Version: v, Kind: ConflictProtocolChanged}
		case a.Metadata != nil:
			return &ConflictError{Version: v, Kind: ConflictMetadataChanged}
		case a.Txn != nil && myTxns[a.Txn.AppID]:
			return &ConflictError{Version: v, Kind: ConflictConcurrentTxn, Paths: []string{a.Txn.AppID}}
		case a.Remove != nil:
			k := FileKey(a.Remove.Path, a.Remove.DeletionVector)
			if myRemoves[k] {
				kind, paths = ConflictDeleteDelete, append(paths, a.Remove.Path)
			} else if t.readFiles[k] || t.readAll || t.matchesRead(a.Remove.PartitionValues) {
				if kind == "" {
					kind = ConflictDeleteRead
				}
				paths = append(paths, a.Remove.Path)
			}
		case a.Add != nil && a.Add.DataChange:
			// Under WriteSerializable, files added by a blind append do not invalidate reads.
			if winnerBlind && t.opts.Isolation == WriteSerializable && t.metadata == nil {
				continue
			}
			if t.readAll || t.matchesRead(a.Add.PartitionValues) {
				if kind == "" {
					kind = ConflictAppendedToRead
				}
				paths = append(paths, a.Add.Path)
			}
		}
	}
	if kind != "" {
		slices.Sort(paths)
		return &ConflictError{Version: v, Kind: kind, Paths: paths}
	}
	return nil
}

func (t *Transaction) matchesRead(pv map[string]*string) bool {
	for _, p := range t.readPred {
		if p(pv) {
			return true
		}
	}
	return false
}

// encode renders the commit file for version.
func (t *Transaction) encode(version int64, txnID string, blind bool) ([]byte, error) {
	now := t.log.opts.Now().UnixMilli()
	ci := &CommitInfo{
		Timestamp:           &now,
		Operation:           t.opts.Operation,
		OperationParameters: t.opts.OperationParameters,
		OperationMetrics:    t.opts.OperationMetrics,
		IsolationLevel:      string(t.opts.Isolation),
		IsBlindAppend:       &blind,
		EngineInfo:          t.log.opts.EngineInfo,
		UserMetadata:        t.opts.UserMetadata,
		TxnID:               txnID,
	}
	if rv := version - 1; t.read != nil {
		ci.ReadVersion = &rv
	}
	if ci.OperationParameters == nil {
		ci.OperationParameters = map[string]any{}
	}
	if t.ictEnabled() {
		ict := now
		if t.read != nil && t.read.timestamp >= ict {
			ict = t.read.timestamp + 1
		}
		ci.InCommitTimestamp = &ict
	}
	acts := make([]Action, 0, len(t.actions)+3)
	acts = append(acts, Action{CommitInfo: ci})
	if t.protocol != nil {
		acts = append(acts, Action{Protocol: t.protocol})
	}
	if t.metadata != nil {
		acts = append(acts, Action{Metadata: t.metadata})
	}
	acts = append(acts, t.actions...)
	return EncodeActions(acts)
}

func (t *Transaction) ictEnabled() bool {
	if t.metadata != nil {
		return t.metadata.Configuration["delta.enableInCommitTimestamps"] == "true"
	}
	return t.read != nil && t.read.InCommitTimestamps()
}

// postCommit writes a checkpoint when the new version is a multiple of the table's
// delta.checkpointInterval. A failed checkpoint does not fail the commit: the log is complete
// without it, and the next interval tries again.
func (t *Transaction) postCommit(ctx context.Context, version int64) {
	if t.log.opts.DisableAutoCheckpoint || version == 0 {
		return
	}
	interval := int64(10)
	if t.read != nil {
		interval = t.read.CheckpointInterval()
	}
	if version%interval != 0 {
		return
	}
	snap, err := t.log.SnapshotAt(ctx, version)
	if err != nil {
		return
	}
	_, _ = t.log.Checkpoint(ctx, snap)
}
