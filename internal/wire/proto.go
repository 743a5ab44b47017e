package wire

// ProtocolVersion changes whenever the proxy and host would no longer
// understand each other; the handshake refuses a mismatch.
const ProtocolVersion = 4

// Hello is the host's first frame on the control socket.
type Hello struct {
	Protocol int    `msgpack:"protocol"`
	BuildID  string `msgpack:"build"`
	Pid      int    `msgpack:"pid"`
}

// Control operations, the first value of every frame the proxy sends on the
// control socket.
const (
	// OpOpen loads the vendor module: Open follows; the host replies OpenReply.
	OpOpen = 1
	// OpChannel hands the host a new call channel: the frame is
	// (OpChannel, region size), with the channel's socket and, when the
	// size is not 0, its shared region (a sealed memfd of that size, see
	// Region) as SCM_RIGHTS in that order; no reply.
	OpChannel = 2
)

// Open asks the host to load a vendor module.
type Open struct {
	Module string `msgpack:"module"`
	// MemoryLimit caps the host's data segment (RLIMIT_DATA) in bytes
	// before the module loads; 0 means no limit.
	MemoryLimit uint64 `msgpack:"memory_limit"`
	// ModuleSHA256 pins the module: the host hashes the file it opened
	// and loads that very file only if the hex digest matches; "" loads
	// without a check.
	ModuleSHA256 string `msgpack:"module_sha256"`
}

// OpenReply says whether the module loaded. Error is one line for the log.
// Interfaces are the module's "PKCS 11" interfaces the proxy offers, each
// [major, minor, flags] in the module's order, and Default the index of
// the one its C_GetInterface answers with no name and no version.
type OpenReply struct {
	OK         bool        `msgpack:"ok"`
	Error      string      `msgpack:"error"`
	Interfaces [][3]uint64 `msgpack:"interfaces"`
	Default    int         `msgpack:"default"`
}

// Limits on what one message may carry.
const (
	// MaxChannelsPerHost bounds how many call channels one host serves.
	MaxChannelsPerHost = 256
	// MaxTemplate bounds an attribute template's length on the wire.
	MaxTemplate = 1 << 16
	// MaxNesting bounds nested attribute templates (CKA_WRAP_TEMPLATE, ...).
	MaxNesting = 4
)
