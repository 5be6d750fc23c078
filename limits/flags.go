package limits

import "flag"

// RegisterFlags defines the flags of quire serve that set c, with c's
// current values as their defaults (start from DefaultConfig). A value of 0
// turns a limit off.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest WebSocket message a peer may send; larger closes it with 1009 (0: no limit)")
	fs.Float64Var(&c.UpdatesPerSecond, "updates-per-second", c.UpdatesPerSecond, "messages per second one connection may send on average; faster closes it with 4429 (0: no limit)")
	fs.IntVar(&c.UpdateBurst, "update-burst", c.UpdateBurst, "messages one connection may send at once above its rate")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "WebSocket connections one client address (IPv4, IPv6 /64) may hold; more get 429 (0: no limit)")
	fs.Int64Var(&c.MaxDocBytes, "max-doc-bytes", c.MaxDocBytes, "stored size past which a document takes no more updates (0: no limit)")
	fs.BoolVar(&c.LimitLoopback, "limit-loopback", c.LimitLoopback, "apply the per-address limits and the penalty box to loopback peers too (off: a local proxy or tool is not limited)")
	fs.DurationVar(&c.Penalty.Base, "penalty-base", c.Penalty.Base, "first ban of a client that keeps being refused or cut off; doubles with each offence (0: no penalty box)")
	fs.DurationVar(&c.Penalty.Max, "penalty-max", c.Penalty.Max, "longest ban of the penalty box")
}
