package deltaarrow

import (
	"testing"

	"github.com/lakehouse/lake/txlog"
)

func TestCanWiden(t *testing.T) {
	cases := []struct {
		from, to string
		ok       bool
	}{
		{"byte", "short", true}, {"byte", "integer", true}, {"byte", "long", true},
		{"short", "integer", true}, {"short", "long", true}, {"integer", "long", true},
		{"long", "integer", false}, {"integer", "integer", false},
		{"float", "double", true}, {"double", "float", false},
		{"byte", "double", true}, {"short", "double", true}, {"integer", "double", true},
		{"long", "double", false}, {"float", "long", false},
		{"date", "timestamp_ntz", true}, {"date", "timestamp", false}, {"timestamp", "timestamp_ntz", false},
		{"decimal(5,2)", "decimal(10,4)", true}, {"decimal(5,2)", "decimal(6,2)", true},
		{"decimal(5,2)", "decimal(5,3)", false}, {"decimal(5,2)", "decimal(10,1)", false},
		{"decimal(10, 2)", "decimal(12,4)", true},
		{"byte", "decimal(10,0)", true}, {"integer", "decimal(12,2)", true}, {"integer", "decimal(10,1)", false},
		{"long", "decimal(20,0)", true}, {"long", "decimal(21,2)", false},
		{"decimal(10,0)", "long", false}, {"string", "integer", false}, {"integer", "string", false},
		{"int", "bigint", true},
	}
	for _, c := range cases {
		from, err1 := ParseTypeName(c.from)
		to, err2 := ParseTypeName(c.to)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s -> %s: %v %v", c.from, c.to, err1, err2)
		}
		if got := CanWiden(from, to); got != c.ok {
			t.Errorf("CanWiden(%s, %s) = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	if _, err := ParseTypeName("decimal(40,2)"); err == nil {
		t.Error("decimal(40,2) parsed")
	}
}

func TestAppendTypeChange(t *testing.T) {
	f := txlog.StructField{Name: "v", Type: txlog.Long, Metadata: map[string]any{
		"comment":      "x",
		TypeChangesKey: []any{map[string]any{"tableVersion": 1.0, "fromType": "short", "toType": "integer"}},
	}}
	md, err := AppendTypeChange(f, TypeChange{TableVersion: 4, FromType: "integer", ToType: "long"})
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata = md
	got, err := TypeChanges(f)
	if err != nil || len(got) != 2 || got[0] != (TypeChange{1, "short", "integer", ""}) || got[1] != (TypeChange{4, "integer", "long", ""}) {
		t.Fatalf("changes %+v (%v)", got, err)
	}
	if md["comment"] != "x" {
		t.Errorf("other metadata lost: %v", md)
	}
}
