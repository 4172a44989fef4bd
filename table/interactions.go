package table

import "github.com/lakehouse/lake/txlog"

// InteractionPartitionColumn is the interaction table's partition column.
const InteractionPartitionColumn = "event_date"

// InteractionSchema is the standard interaction schema (shared/CONTRACT.md): who did what to
// which item, when.
func InteractionSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "event_id", Type: txlog.String},
		{Name: "user_id", Type: txlog.String},
		{Name: "item_id", Type: txlog.String},
		{Name: "interaction_type", Type: txlog.String},
		{Name: "timestamp", Type: txlog.Timestamp},
		{Name: "event_date", Type: txlog.Date},
		{Name: "source", Type: txlog.String, Nullable: true},
		{Name: "value", Type: txlog.Double, Nullable: true},
		{Name: "properties", Type: &txlog.MapType{KeyType: txlog.String, ValueType: txlog.String, ValueContainsNull: true}, Nullable: true},
	}}
}
