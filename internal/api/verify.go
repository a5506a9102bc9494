package api

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

// verifyRequest is the (optional) body of POST /verify.
type verifyRequest struct {
	// VS limits the run to one service; 0 runs every service's checks.
	VS int `json:"vs,omitempty"`
	// CAPEM holds extra trusted root certificates (PEM) for the chain
	// check, e.g. an internal CA; the system's roots are always trusted.
	CAPEM string `json:"caPem,omitempty"`
}

// verifyReport is the response of POST /verify.
type verifyReport struct {
	// Revision is the configuration revision verified.
	Revision uint64 `json:"revision"`
	// Passed and Failed count the results.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Results are the checks' outcomes.
	Results []verify.Result `json:"results"`
}

// runVerify sends every service's smoke checks through the service, as a
// client would, and reports per check.
func (s *Server) runVerify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			s.fail(w, err)
			return
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if req.CAPEM != "" && !roots.AppendCertsFromPEM([]byte(req.CAPEM)) {
		s.fail(w, config.Errors{{Path: "caPem", Message: "holds no PEM certificate"}})
		return
	}
	snap := s.ctl.Current()
	res := verify.Run(r.Context(), snap.Config, verify.Options{Counters: s.counters, Down: s.down, Roots: roots, VS: req.VS, Timeout: 10 * time.Second})
	out := verifyReport{Revision: snap.Revision, Results: res}
	for _, x := range res {
		if x.Pass {
			out.Passed++
		} else {
			out.Failed++
		}
	}
	writeJSON(w, http.StatusOK, out)
}
