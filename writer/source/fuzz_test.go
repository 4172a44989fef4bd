package source_test

import (
	"testing"

	"github.com/lakehouse/lake/writer/source"
)

// FuzzRead feeds hostile bytes through every reader: nothing panics, nothing leaks, and every
// record read is written, quarantined or counted as a duplicate (read checks both).
func FuzzRead(f *testing.F) {
	f.Add("user_id,item_id,interaction_type,timestamp\nu,i,view,2024-03-07T10:00:00Z\n", uint8(0))
	f.Add("uid,product,action,ts\n\"u\"\"1\",p,pv,1709812345000\nu,\"p\n", uint8(1))
	f.Add(`[{"user":{"id":"u"},"item":{"id":"i"},"event":"view","time":"2024-03-07T10:00:00Z"},5]`, uint8(2))
	f.Add(`{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":1709812345000,"properties":{"a":1}}`+"\n{x\n", uint8(3))
	f.Fuzz(func(t *testing.T, in string, mode uint8) {
		var opts source.Options
		ro := &source.ReadOptions{ChunkRows: 3}
		switch mode % 4 {
		case 0:
			ro.Format = "csv"
		case 1:
			ro.Format = "csv"
			opts.Mapping = retailMapping
		case 2:
			ro.Format = "json"
			opts.Mapping = &source.Mapping{Fields: map[string]string{"user_id": "user.id", "item_id": "item.id", "interaction_type": "event", "timestamp": "time"}}
		case 3:
			ro.Format = "ndjson"
			opts.TimestampFormat = source.TimestampRFC3339OrEpochMS
		}
		read(t, in, &opts, ro)
	})
}
