package benchharness

// Cleanup runs undo steps in reverse order of registration, once.
type Cleanup struct{ steps []func() }

// Add registers a step.
func (c *Cleanup) Add(f func()) { c.steps = append(c.steps, f) }

// Run runs every registered step, last first, and forgets them.
func (c *Cleanup) Run() {
	for i := len(c.steps) - 1; i >= 0; i-- {
		c.steps[i]()
	}
	c.steps = nil
}
