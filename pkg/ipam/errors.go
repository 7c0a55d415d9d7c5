package ipam

import (
	"fmt"
	"net/netip"
)

// PoolNotFoundError says a referenced IPPool does not exist.
type PoolNotFoundError struct {
	Pool string
}

// Error names the pool and says what is wrong.
func (e *PoolNotFoundError) Error() string { return fmt.Sprintf("IPPool %q not found", e.Pool) }

// PoolExhaustedError says an IPPool has no free address left.
type PoolExhaustedError struct {
	Pool  string
	Total int
}

// Error names the pool and says what is wrong.
func (e *PoolExhaustedError) Error() string {
	return fmt.Sprintf("IPPool %q is exhausted: all %d allocatable addresses are in use", e.Pool, e.Total)
}

// PoolFamilyError says two referenced IPPools are of one address family: a network takes at most
// one IPv4 and one IPv6 pool.
type PoolFamilyError struct {
	Pool      string
	OtherPool string
	Family    string // "IPv4" or "IPv6"
}

// Error names the pool and says what is wrong.
func (e *PoolFamilyError) Error() string {
	return fmt.Sprintf("IPPool %q is %s like IPPool %q: a network takes one pool per address family",
		e.Pool, e.Family, e.OtherPool)
}

// VLANConflictError says two referenced IPPools carry different non-zero VLANs and the request
// (the NetworkAttachmentDefinition) sets no VLAN that would override both.
type VLANConflictError struct {
	Pool      string
	VLAN      int
	OtherPool string
	OtherVLAN int
}

// Error names the pool and says what is wrong.
func (e *VLANConflictError) Error() string {
	return fmt.Sprintf("IPPool %q has VLAN %d but IPPool %q has VLAN %d: set vlan in the network to choose one",
		e.Pool, e.VLAN, e.OtherPool, e.OtherVLAN)
}

// InvalidPoolError says an IPPool's spec cannot be used (it should have been rejected on admission).
type InvalidPoolError struct {
	Pool   string
	Reason string
}

// Error names the pool and says what is wrong.
func (e *InvalidPoolError) Error() string {
	return fmt.Sprintf("IPPool %q is invalid: %s", e.Pool, e.Reason)
}

// StaticAddressError says a requested static address cannot be given to the owner.
type StaticAddressError struct {
	Pool    string // the pool whose range holds the address
	Address netip.Addr
	Reason  string
}

// Error names the pool and says what is wrong.
func (e *StaticAddressError) Error() string {
	return fmt.Sprintf("static address %s in IPPool %q: %s", e.Address, e.Pool, e.Reason)
}

// WriteConflictError says the pool's status could not be written before the deadline because other
// writers kept changing it.
type WriteConflictError struct {
	Pool     string
	Attempts int
	Err      error // the last error seen
}

// Error names the pool and says what is wrong.
func (e *WriteConflictError) Error() string {
	return fmt.Sprintf("IPPool %q: status update did not succeed after %d attempts: %v", e.Pool, e.Attempts, e.Err)
}

// Unwrap returns the last error seen.
func (e *WriteConflictError) Unwrap() error { return e.Err }
