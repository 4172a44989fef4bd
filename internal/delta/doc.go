// Package delta is the Delta Lake protocol's model: the actions of a commit or checkpoint (Add,
// Remove, Metadata, Protocol, ...), their newline-delimited JSON form, table schemas, and the
// reader and writer features this engine supports.
//
// It is a leaf: it imports nothing of lake's, so the transaction log (txlog) and its checkpoint
// codec (txlog/internal/checkpoint) can both build on it. Its public spelling is txlog's: every
// exported name here is re-exported by txlog (types as aliases), and code outside txlog's own
// tree uses txlog.Add, txlog.StructType, txlog.UnsupportedFeatureError and so on.
//
// # Errors
//
// Protocol.CheckRead and CheckWrite return an *UnsupportedFeatureError (txlog's, by alias) when
// the table needs a feature this engine does not implement. DecodeActions names the line that
// does not decode; callers add the file.
package delta
