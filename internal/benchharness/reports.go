package benchharness

// The result files under _output/bench/, written by the benchmark programs and read by the
// summary. Field names are part of the files' format: runs are compared across commits.

// AttachSample is one Pod's figures in attach.json.
type AttachSample struct {
	// Ports is the number of Pod ports on the bridge once the ADD is done.
	Ports    int     `json:"ports"`
	FloorAdd float64 `json:"floor_add_ms"`
	// AgentAdd is the antrea plugin's part of the chained ADD; ChainAdd the whole list.
	AgentAdd float64 `json:"agent_add_ms"`
	ChainAdd float64 `json:"chain_add_ms"`
	// Where the agent's time went, from its log (see Breakdown).
	Server    float64 `json:"agent_server_ms"`
	Engine    float64 `json:"agent_engine_ms"`
	Allocate  float64 `json:"agent_allocate_ms"`
	Veth      float64 `json:"agent_veth_ms"`
	Configure float64 `json:"agent_configure_ms"`
	OVS       float64 `json:"agent_ovs_ms"`
	// ShimAlone is the shim's ADD against a NullAgent: the exec and the call, no work.
	ShimAlone float64 `json:"shim_alone_add_ms"`
	// ExecFloor is the exec floor's ADD (internal/benchharness/execfloor): the least any chained
	// plugin costs. NoNetworks is the shim's chained ADD, against the agent, of a Pod that asks
	// for no secondary network (its annotations passed as the runtime passes them).
	ExecFloor  float64 `json:"exec_floor_add_ms"`
	NoNetworks float64 `json:"no_networks_add_ms"`
	// The peer: ovs-cni with host-local IPAM on a Node of its own, as shipped and fast-polling.
	OVSCNIAdd     float64 `json:"ovscni_add_ms"`
	OVSCNIFastAdd float64 `json:"ovscni_fast_add_ms"`
	OVSCNIDel     float64 `json:"ovscni_del_ms,omitempty"`
	OVSCNIFastDel float64 `json:"ovscni_fast_del_ms,omitempty"`
	FloorDel      float64 `json:"floor_del_ms,omitempty"`
	AgentDel      float64 `json:"agent_del_ms,omitempty"`
	ChainDel      float64 `json:"chain_del_ms,omitempty"`
}

// AttachBand is the statistics of one band of bridge sizes in attach.json.
type AttachBand struct {
	Band     string `json:"band"`
	FloorAdd Stats  `json:"floor_add"`
	AgentAdd Stats  `json:"agent_add"`
	ChainAdd Stats  `json:"chain_add"`
	FloorDel Stats  `json:"floor_del"`
	AgentDel Stats  `json:"agent_del"`
	ChainDel Stats  `json:"chain_del"`
	// ShimAlone is the shim's ADD against a NullAgent (see AttachSample).
	ShimAlone  Stats `json:"shim_alone_add"`
	ExecFloor  Stats `json:"exec_floor_add"`
	NoNetworks Stats `json:"no_networks_add"`
	OVSCNIAdd  Stats `json:"ovscni_add"`
	OVSCNIFast Stats `json:"ovscni_fast_add"`
	OVSCNIDel  Stats `json:"ovscni_del"`
	OVSCNIFDel Stats `json:"ovscni_fast_del"`
	// Medians of the agent's parts: the shim and its exec (client minus server), the handler
	// outside the engine (server minus engine), the engine and its phases.
	Shim     float64 `json:"agent_shim_p50_ms"`
	Handler  float64 `json:"agent_handler_p50_ms"`
	Engine   float64 `json:"agent_engine_p50_ms"`
	Allocate float64 `json:"agent_allocate_p50_ms"`
	OVS      float64 `json:"agent_ovs_p50_ms"`
	Veth     float64 `json:"agent_veth_p50_ms"`
	P50Ratio float64 `json:"add_p50_ratio"`
	P99Ratio float64 `json:"add_p99_ratio"`
}

// AttachReport is attach.json.
type AttachReport struct {
	Benchmark string       `json:"benchmark"`
	Pods      int          `json:"pods"`
	Bands     []AttachBand `json:"bands"`
	// All is every sample together (the exec floor and the shim do not depend on the bridge).
	All     AttachBand     `json:"all"`
	Samples []AttachSample `json:"samples"`
	Targets []Target       `json:"targets"`
	Machine Machine        `json:"machine"`
}

// BurstRound is one floor burst and one agent burst in burst.json.
type BurstRound struct {
	FloorSeconds float64 `json:"floor_s"`
	AgentSeconds float64 `json:"agent_s"`
	// AgentReceivedSeconds is when the last shim's request reached the agent, AgentEngineSeconds
	// when the agent's engine had attached the last Pod (both from its log); the rest of
	// AgentSeconds is the answers.
	AgentReceivedSeconds float64 `json:"agent_received_s"`
	// ShimAloneSeconds is the same burst of shims against a NullAgent; ExecFloorSeconds of the
	// exec floor; OVSCNI* of ovs-cni on its Node, as shipped and fast-polling.
	ShimAloneSeconds   float64 `json:"shim_alone_s"`
	ExecFloorSeconds   float64 `json:"exec_floor_s"`
	OVSCNISeconds      float64 `json:"ovscni_s"`
	OVSCNIFastSeconds  float64 `json:"ovscni_fast_s"`
	OVSCNIFailures     int     `json:"ovscni_failures"`
	OVSCNIFastFailures int     `json:"ovscni_fast_failures"`
	AgentEngineSeconds float64 `json:"agent_engine_s"`
	FloorAdd           Stats   `json:"floor_add"`
	AgentAdd           Stats   `json:"agent_add"`
	AgentFirst         bool    `json:"agent_first"`
}

// BurstReport is burst.json.
type BurstReport struct {
	Benchmark        string       `json:"benchmark"`
	Pods             int          `json:"pods"`
	Rounds           []BurstRound `json:"rounds"`
	FloorMedianS     float64      `json:"floor_median_s"`
	AgentMedianS     float64      `json:"agent_median_s"`
	ReceivedMedianS  float64      `json:"agent_received_median_s"`
	EngineMedianS    float64      `json:"agent_engine_median_s"`
	ShimAloneMedianS float64      `json:"shim_alone_median_s"`
	ExecFloorMedianS float64      `json:"exec_floor_median_s"`
	OVSCNIMedianS    float64      `json:"ovscni_median_s"`
	OVSCNIFastMedS   float64      `json:"ovscni_fast_median_s"`
	Ratio            float64      `json:"ratio"`
	Failures         int          `json:"failures"`
	AgentPeakRSSMiB  float64      `json:"agent_peak_rss_mib"`
	// AgentPeakAnonMiB is the highest anonymous resident memory (RssAnon) sampled during the
	// agent's bursts: VmHWM counts the binary's file pages too, which move run to run.
	AgentPeakAnonMiB float64 `json:"agent_peak_rss_anon_mib"`
	AgentRSSMiB      float64 `json:"agent_rss_after_mib"`
	// AgentAnonMiB and AgentFileMiB split AgentRSSMiB (see Memory).
	AgentAnonMiB float64  `json:"agent_rss_anon_after_mib"`
	AgentFileMiB float64  `json:"agent_rss_file_after_mib"`
	Targets      []Target `json:"targets"`
	Machine      Machine  `json:"machine"`
}

// Restart is one kill -9 and start in restart.json.
type Restart struct {
	ReadySeconds     float64  `json:"ready_s"`
	RecreatedPorts   []string `json:"recreated_ports"`
	ChangedAddresses []string `json:"changed_addresses"`
	ChangedPools     []string `json:"changed_allocations"`
}

// RestartReport is restart.json.
type RestartReport struct {
	Benchmark      string    `json:"benchmark"`
	Pods           int       `json:"pods"`
	Networks       int       `json:"networks_per_pod"`
	Ports          int       `json:"ports"`
	AttachSeconds  float64   `json:"attach_all_s"`
	Restarts       []Restart `json:"restarts"`
	MaxReadySec    float64   `json:"max_ready_s"`
	MedianReadySec float64   `json:"median_ready_s"`
	Targets        []Target  `json:"targets"`
	Machine        Machine   `json:"machine"`
}

// MemoryReport is memory.json.
type MemoryReport struct {
	Benchmark        string  `json:"benchmark"`
	Pods             int     `json:"pods"`
	OtherPods        int     `json:"other_pods"`
	CreateOthersSec  float64 `json:"create_others_s"`
	RSSBaseMiB       float64 `json:"rss_without_others_mib"`
	RSSWithOthersMiB float64 `json:"rss_with_others_mib"`
	// The anonymous part (RssAnon) of the RSS, medians of the same samples.
	AnonBaseMiB       float64   `json:"rss_anon_without_others_mib"`
	AnonWithOthersMiB float64   `json:"rss_anon_with_others_mib"`
	DeltaMiB          float64   `json:"delta_mib"`
	PeakRSSMiB        float64   `json:"peak_rss_mib"`
	SamplesBase       []float64 `json:"samples_without_others_mib"`
	SamplesOthers     []float64 `json:"samples_with_others_mib"`
	Targets           []Target  `json:"targets"`
	Machine           Machine   `json:"machine"`
}

// IPAMBand is one stretch of a pool's fill in ipam.json: the allocations that completed From+1
// through To, how long they took together and their latencies.
type IPAMBand struct {
	From         int     `json:"from"`
	To           int     `json:"to"`
	Seconds      float64 `json:"seconds"`
	AllocsPerSec float64 `json:"allocations_per_sec"`
	Latency      Stats   `json:"latency"`
}

// IPAMRun is one allocator filling a fresh pool from several Nodes at once.
type IPAMRun struct {
	// Allocator is "podvlan" (the agent's pkg/ipam) or "whereabouts".
	Allocator string `json:"allocator"`
	Nodes     int    `json:"nodes"`
	// InFlight is the most requests one Node has outstanding (a kubelet's parallelism).
	InFlight     int        `json:"in_flight_per_node"`
	Allocations  int        `json:"allocations"`
	Failures     int        `json:"failures"`
	FirstFailure string     `json:"first_failure,omitempty"`
	Seconds      float64    `json:"seconds"`
	AllocsPerSec float64    `json:"allocations_per_sec"`
	Latency      Stats      `json:"latency"`
	Bands        []IPAMBand `json:"bands"`
	// Stopped says the run reached its time budget before its allocation count.
	Stopped         bool   `json:"stopped_at_budget,omitempty"`
	StatusWrites    uint64 `json:"status_writes,omitempty"`
	ConflictRetries uint64 `json:"conflict_retries,omitempty"`
}

// IPAMReport is ipam.json. The program fails a run outright when an address is handed out twice,
// so a written file means no duplicates.
type IPAMReport struct {
	Benchmark       string    `json:"benchmark"`
	PoolAddresses   int       `json:"pool_addresses"`
	BandSize        int       `json:"band_size"`
	RawWritesPerSec float64   `json:"raw_status_writes_per_sec"`
	RawWriteEntries int       `json:"raw_status_write_entries"`
	Runs            []IPAMRun `json:"runs"`
	Targets         []Target  `json:"targets"`
	Machine         Machine   `json:"machine"`
}

// Run returns the run of allocator at nodes, if there is one.
func (r IPAMReport) Run(allocator string, nodes int) (IPAMRun, bool) {
	for _, run := range r.Runs {
		if run.Allocator == allocator && run.Nodes == nodes {
			return run, true
		}
	}
	return IPAMRun{}, false
}
