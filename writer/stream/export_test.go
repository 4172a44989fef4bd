package stream

// SetAfterCommit sets the hook that runs between a batch's commit and its acks.
func (c *Committer) SetAfterCommit(f func() error) { c.afterCommit = f }
