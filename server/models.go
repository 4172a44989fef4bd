package server

import (
	"encoding/json"
	"net/http"
)

// handleModels answers GET /v1/models: the model registry as Options.Models returns it (a JSON
// object: live and candidate runs with lineage and metrics), plus "served": the version of each
// output table this server is serving.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !s.readAuthorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lake"`)
		writeError(w, http.StatusUnauthorized, "the read APIs need 'Authorization: Bearer TOKEN' with the server's read token")
		return
	}
	if s.opts.Models == nil {
		writeError(w, http.StatusServiceUnavailable, "this server has no model registry: start it with `lake serve --outputs PREFIX`")
		return
	}
	v, err := s.opts.Models(r.Context())
	if err != nil {
		s.opts.Logger.Warn("reading the model registry", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot read the model registry: "+err.Error())
		return
	}
	b, err := json.Marshal(v)
	var body map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil || body == nil {
		writeError(w, http.StatusInternalServerError, "the model registry is not a JSON object")
		return
	}
	if s.opts.Reads != nil {
		served, _ := json.Marshal(s.opts.Reads.Versions())
		body["served"] = served
	}
	writeJSON(w, http.StatusOK, body)
}
