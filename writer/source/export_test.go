package source

import "context"

// CommitQuarantineOnly commits p's quarantine writer and abandons its table writer: a process
// that died between the two commits of a batch.
func CommitQuarantineOnly(ctx context.Context, p *Pending) error {
	if _, err := p.quar.Close(ctx); err != nil {
		return err
	}
	return p.main.Abort(ctx)
}
