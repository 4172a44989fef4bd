package reader

// SetWholeFileLimit changes the size up to which data files are read with one request, and
// returns a function that restores it.
func SetWholeFileLimit(n int64) (restore func()) {
	old := wholeFileLimit
	wholeFileLimit = n
	return func() { wholeFileLimit = old }
}
