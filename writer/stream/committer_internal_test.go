package stream

import "testing"

func TestPeekID(t *testing.T) {
	for body, want := range map[string]string{
		`{"event_id":"a-1","user_id":"u"}`:                     "a-1",
		`{"user_id":"u", "event_id" : "b"}`:                    "b",
		`{"properties":{"event_id":"inner"},"event_id":"top"}`: "top",
		`{"properties":{"event_id":"inner"}}`:                  "",
		`{"event_id":"q\"x"}`:                                  `q"x`,
		`{"event_id":5}`:                                       "",
		`{"user_id":"u"}`:                                      "",
		`not json "event_id":"x"`:                              "",
		`{"note":"the \"event_id\": \"fake\"","event_id":"r"}`: "r",
		`{"note":"\"event_id\":\"fake\""}`:                     "",
	} {
		if got := peekID([]byte(body)); got != want {
			t.Errorf("peekID(%s) = %q, want %q", body, got, want)
		}
	}
}

func BenchmarkPeekID(b *testing.B) {
	body := []byte(`{"event_id":"01a22550-c094-70b3-9074-e1054409d2a2","user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2026-11-29T03:19:38.885846Z","source":"collector"}`)
	for b.Loop() {
		peekID(body)
	}
}
