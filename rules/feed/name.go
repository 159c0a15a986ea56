package feed

// Name returns the feed block's name, for metrics and readiness.
func (f *Feed) Name() string { return f.cfg.Name }
