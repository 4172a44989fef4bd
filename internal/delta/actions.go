package delta

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
)

// Protocol is the protocol action: the reader and writer versions (and, from reader 3 / writer 7,
// the named features) a client needs to read or write the table.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format names the data files' format; Provider is always "parquet".
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action: the table's identity, schema, partitioning and properties.
type Metadata struct {
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
	Configuration    map[string]string `json:"configuration"`
}

// DeletionVector describes the rows of a data file that are deleted (protocol "Deletion Vector
// Descriptor"). StorageType is "u" (relative path, UUID-encoded), "i" (inline) or "p" (absolute).
type DeletionVector struct {
	StorageType    string `json:"storageType"`
	PathOrInlineDv string `json:"pathOrInlineDv"`
	Offset         *int32 `json:"offset,omitempty"`
	SizeInBytes    int32  `json:"sizeInBytes"`
	Cardinality    int64  `json:"cardinality"`
}

// UniqueID is the deletion vector's identity within a snapshot: storage type, path and offset.
func (dv *DeletionVector) UniqueID() string {
	if dv == nil {
		return ""
	}
	if dv.Offset != nil {
		return fmt.Sprintf("%s%s@%d", dv.StorageType, dv.PathOrInlineDv, *dv.Offset)
	}
	return dv.StorageType + dv.PathOrInlineDv
}

// Add is the add action: a data file that is part of the table. PartitionValues maps each
// partition column to its serialised value; a nil pointer is a null value. Stats is the file's
// statistics as the JSON the protocol defines ("" when absent).
type Add struct {
	Path                    string             `json:"path"`
	PartitionValues         map[string]*string `json:"partitionValues"`
	Size                    int64              `json:"size"`
	ModificationTime        int64              `json:"modificationTime"`
	DataChange              bool               `json:"dataChange"`
	Stats                   string             `json:"stats,omitempty"`
	Tags                    map[string]string  `json:"tags,omitempty"`
	DeletionVector          *DeletionVector    `json:"deletionVector,omitempty"`
	BaseRowID               *int64             `json:"baseRowId,omitempty"`
	DefaultRowCommitVersion *int64             `json:"defaultRowCommitVersion,omitempty"`
	ClusteringProvider      *string            `json:"clusteringProvider,omitempty"`
}

// Remove is the remove action: a logical deletion (a tombstone) of a data file.
type Remove struct {
	Path                    string             `json:"path"`
	DeletionTimestamp       *int64             `json:"deletionTimestamp,omitempty"`
	DataChange              bool               `json:"dataChange"`
	ExtendedFileMetadata    *bool              `json:"extendedFileMetadata,omitempty"`
	PartitionValues         map[string]*string `json:"partitionValues,omitempty"`
	Size                    *int64             `json:"size,omitempty"`
	Stats                   string             `json:"stats,omitempty"`
	Tags                    map[string]string  `json:"tags,omitempty"`
	DeletionVector          *DeletionVector    `json:"deletionVector,omitempty"`
	BaseRowID               *int64             `json:"baseRowId,omitempty"`
	DefaultRowCommitVersion *int64             `json:"defaultRowCommitVersion,omitempty"`
}

// CDC is the cdc action: a change-data file written by a commit.
type CDC struct {
	Path            string             `json:"path"`
	PartitionValues map[string]*string `json:"partitionValues"`
	Size            int64              `json:"size"`
	DataChange      bool               `json:"dataChange"`
	Tags            map[string]string  `json:"tags,omitempty"`
}

// Txn is the txn action: the last version an application (AppID) committed, which makes its
// writes idempotent.
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

// CommitInfo is the commitInfo action: provenance of a commit. The protocol leaves it open;
// fields we do not know are kept in Extra and written back unchanged.
type CommitInfo struct {
	Timestamp           *int64         `json:"timestamp,omitempty"`
	InCommitTimestamp   *int64         `json:"inCommitTimestamp,omitempty"`
	Operation           string         `json:"operation,omitempty"`
	OperationParameters map[string]any `json:"operationParameters,omitempty"`
	OperationMetrics    map[string]any `json:"operationMetrics,omitempty"`
	ReadVersion         *int64         `json:"readVersion,omitempty"`
	IsolationLevel      string         `json:"isolationLevel,omitempty"`
	IsBlindAppend       *bool          `json:"isBlindAppend,omitempty"`
	EngineInfo          string         `json:"engineInfo,omitempty"`
	UserMetadata        string         `json:"userMetadata,omitempty"`
	// TxnID identifies the commit attempt; a writer that cannot tell whether its put succeeded
	// reads the commit file back and compares it.
	TxnID string `json:"txnId,omitempty"`
	// Extra holds the fields this engine does not model (userId, clusterId, ...).
	Extra map[string]json.RawMessage `json:"-"`
}

var commitInfoKnown = map[string]bool{
	"timestamp": true, "inCommitTimestamp": true, "operation": true, "operationParameters": true,
	"operationMetrics": true, "readVersion": true, "isolationLevel": true, "isBlindAppend": true,
	"engineInfo": true, "userMetadata": true, "txnId": true,
}

type commitInfoAlias CommitInfo

// UnmarshalJSON decodes the known fields and keeps the rest in Extra.
func (c *CommitInfo) UnmarshalJSON(b []byte) error {
	var a commitInfoAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if !commitInfoKnown[k] {
			if a.Extra == nil {
				a.Extra = make(map[string]json.RawMessage)
			}
			a.Extra[k] = v
		}
	}
	*c = CommitInfo(a)
	return nil
}

// MarshalJSON writes the known fields and Extra.
func (c CommitInfo) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(commitInfoAlias(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// DomainMetadata is the domainMetadata action: configuration owned by a named domain.
type DomainMetadata struct {
	Domain        string `json:"domain"`
	Configuration string `json:"configuration"`
	Removed       bool   `json:"removed"`
}

// Sidecar is the sidecar action of a V2 checkpoint: a file under _delta_log/_sidecars holding
// add and remove actions.
type Sidecar struct {
	Path             string            `json:"path"`
	SizeInBytes      int64             `json:"sizeInBytes"`
	ModificationTime int64             `json:"modificationTime"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// CheckpointMetadata is the checkpointMetadata action of a V2 checkpoint.
type CheckpointMetadata struct {
	Version int64             `json:"version"`
	Tags    map[string]string `json:"tags,omitempty"`
}

// Action is one line of a commit file: exactly one of its fields is set. Lines with an action
// this engine does not know decode to an Action with every field nil, which readers skip.
type Action struct {
	Protocol           *Protocol           `json:"protocol,omitempty"`
	Metadata           *Metadata           `json:"metaData,omitempty"`
	Add                *Add                `json:"add,omitempty"`
	Remove             *Remove             `json:"remove,omitempty"`
	CDC                *CDC                `json:"cdc,omitempty"`
	Txn                *Txn                `json:"txn,omitempty"`
	CommitInfo         *CommitInfo         `json:"commitInfo,omitempty"`
	DomainMetadata     *DomainMetadata     `json:"domainMetadata,omitempty"`
	Sidecar            *Sidecar            `json:"sidecar,omitempty"`
	CheckpointMetadata *CheckpointMetadata `json:"checkpointMetadata,omitempty"`
}

// IsEmpty reports whether the action is one this engine does not know.
func (a *Action) IsEmpty() bool {
	return a.Protocol == nil && a.Metadata == nil && a.Add == nil && a.Remove == nil && a.CDC == nil &&
		a.Txn == nil && a.CommitInfo == nil && a.DomainMetadata == nil && a.Sidecar == nil &&
		a.CheckpointMetadata == nil
}

// DecodeActions parses newline-delimited JSON actions (a commit file or a V2 JSON checkpoint).
// Blank lines and unknown actions are skipped; unknown fields are ignored. A line that is not a
// JSON object is an error that names its line number.
func DecodeActions(data []byte) ([]Action, error) {
	var out []Action
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' {
			return nil, fmt.Errorf("line %d: not a JSON object", line)
		}
		var a Action
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if a.IsEmpty() {
			continue
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeActions writes actions as newline-delimited JSON, one action per line.
func EncodeActions(actions []Action) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range actions {
		if actions[i].IsEmpty() {
			return nil, fmt.Errorf("txlog: action %d is empty", i)
		}
		if err := enc.Encode(&actions[i]); err != nil {
			return nil, fmt.Errorf("txlog: encode action %d: %w", i, err)
		}
	}
	return buf.Bytes(), nil
}
