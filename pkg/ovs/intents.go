package ovs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// IntentKeyPrefix starts the external_ids keys of the Open_vSwitch row that hold intents:
// "podvlan-intent/<container ID>/<interface name>", whose value is the Intent in JSON. Nothing
// else of the row is ours; other keys are never touched.
const IntentKeyPrefix = "podvlan-intent/"

// The ways in an intent records (see DESIGN.md "Three ways in").
const (
	WayChained  = "chained"
	WayDelegate = "delegate"
	WayIPAMOnly = "ipam"
)

// Intent records, before anything is allocated, an attachment the agent is about to make, so
// that an agent killed half way leaks nothing: reconciliation finds the intent and releases what
// the attachment may have got. A chained or delegate attachment's intent is deleted once its
// port records it (or after its rollback); an IPAM-only attachment has no port, so its intent,
// marked Committed, is what records its sandbox until DEL.
type Intent struct {
	ContainerID  string   `json:"containerID"`
	IfName       string   `json:"ifName"`
	PodNamespace string   `json:"podNamespace,omitempty"`
	PodName      string   `json:"podName,omitempty"`
	PodUID       string   `json:"podUID,omitempty"`
	NetNS        string   `json:"netns,omitempty"`
	Network      string   `json:"network,omitempty"`
	Pools        []string `json:"pools,omitempty"`
	// WantsAddresses says the attachment gets addresses (from Pools or static ones).
	WantsAddresses bool `json:"wantsAddresses,omitempty"`
	// Way is WayChained, WayDelegate or WayIPAMOnly.
	Way string `json:"way"`
	// Committed says the attachment was completed (IPAM-only intents only).
	Committed bool `json:"committed,omitempty"`
}

// Key is the intent's external_ids key.
func (in Intent) Key() string { return IntentKey(in.ContainerID, in.IfName) }

// IntentKey is the external_ids key of the intent of interface ifName of containerID.
func IntentKey(containerID, ifName string) string {
	return IntentKeyPrefix + containerID + "/" + ifName
}

func (in Intent) validate() error {
	var errs []error
	if in.ContainerID == "" || strings.Contains(in.ContainerID, "/") {
		errs = append(errs, fmt.Errorf("container ID %q is empty or contains '/'", in.ContainerID))
	}
	if err := validateInterfaceName(in.IfName); err != nil {
		errs = append(errs, err)
	}
	if !slices.Contains([]string{WayChained, WayDelegate, WayIPAMOnly}, in.Way) {
		errs = append(errs, fmt.Errorf("way %q is none of %s, %s, %s", in.Way, WayChained, WayDelegate, WayIPAMOnly))
	}
	return errors.Join(errs...)
}

// RecordIntents writes the intents in one transaction, replacing any of the same keys.
func (c *Client) RecordIntents(ctx context.Context, intents ...Intent) error {
	if len(intents) == 0 {
		return nil
	}
	set := make(map[string]string, len(intents))
	keys := make([]string, 0, len(intents))
	for _, in := range intents {
		if err := in.validate(); err != nil {
			return fmt.Errorf("record intent %s: %w", in.Key(), err)
		}
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("record intent %s: %w", in.Key(), err)
		}
		set[in.Key()] = string(data)
		keys = append(keys, in.Key())
	}
	if err := c.mutateOpenvSwitchIDs(ctx, keys, set); err != nil {
		return fmt.Errorf("record intents %s: %w", strings.Join(keys, ", "), err)
	}
	return nil
}

// DeleteIntents removes the intents of the keys (IntentKey) in one transaction; absent keys are
// no error.
func (c *Client) DeleteIntents(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, IntentKeyPrefix) {
			return fmt.Errorf("delete intent %q: not an intent key", k)
		}
	}
	if err := c.mutateOpenvSwitchIDs(ctx, keys, nil); err != nil {
		return fmt.Errorf("delete intents %s: %w", strings.Join(keys, ", "), err)
	}
	return nil
}

// ListIntents returns every intent, sorted by key. An unreadable value is reported with its key
// and skipped, so that one damaged entry never stops reconciliation.
func (c *Client) ListIntents(ctx context.Context) ([]Intent, error) {
	if err := c.checkConnected(); err != nil {
		return nil, fmt.Errorf("list intents: %w", err)
	}
	row, err := c.openvSwitchRow(ctx)
	if err != nil {
		return nil, fmt.Errorf("list intents: %w", err)
	}
	return intentsFromExternalIDs(row.ExternalIDs)
}

// intentsFromExternalIDs decodes the intents among external_ids.
func intentsFromExternalIDs(ids map[string]string) ([]Intent, error) {
	var out []Intent
	var errs []error
	for k, v := range ids {
		if !strings.HasPrefix(k, IntentKeyPrefix) {
			continue
		}
		var in Intent
		if err := json.Unmarshal([]byte(v), &in); err != nil || in.Key() != k {
			errs = append(errs, fmt.Errorf("intent %s: unreadable value %q", k, v))
			continue
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Intent) int { return strings.Compare(a.Key(), b.Key()) })
	return out, errors.Join(errs...)
}

// mutateOpenvSwitchIDs deletes keys from the Open_vSwitch row's external_ids and inserts set, in
// one transaction (OVSDB's insert never overwrites a key, hence the delete first). Mutations
// touch only the named keys, so concurrent writers of other keys never conflict.
func (c *Client) mutateOpenvSwitchIDs(ctx context.Context, keys []string, set map[string]string) error {
	if err := c.checkConnected(); err != nil {
		return err
	}
	return c.retryOnStaleCache(ctx, func() error {
		row, err := c.openvSwitchRow(ctx)
		if err != nil {
			return err
		}
		mutations := []model.Mutation{{Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: keys}}
		if len(set) > 0 {
			mutations = append(mutations, model.Mutation{Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: set})
		}
		ops, err := c.db.Where(row).Mutate(row, mutations...)
		if err != nil {
			return fmt.Errorf("build external_ids mutation: %w", err)
		}
		_, err = c.transact(ctx, ops)
		return err
	})
}
